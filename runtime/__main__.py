"""``python -m gridbind`` is the ``gridbind`` command."""

from gridbind.cli import main

raise SystemExit(main())
