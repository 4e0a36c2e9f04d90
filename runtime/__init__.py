"""gridbind: typed, code-generated bindings for IEC 61850-8-2 over XMPP and for STTP.

Subpackages: :mod:`gridbind.sttp` (STTP publisher/subscriber, both wire profiles),
:mod:`gridbind.iec61850` (8-2 codec, XMPP transport, server and client), :mod:`gridbind.codegen`
(specs -> generated code; needs the ``codegen`` extra, never imported at run time) and
:mod:`gridbind.generated` (the committed output of codegen).
"""

from gridbind.errors import GridbindError, LocalError, RemoteError

__all__ = ["GridbindError", "LocalError", "RemoteError", "__version__"]
__version__ = "0.1.0"
