"""The exception root of gridbind and the two ways a failure can arise.

Every exception gridbind raises on purpose derives from :class:`GridbindError`, through one
branch per package (:class:`gridbind.sttp.SttpError`, :class:`gridbind.iec61850.Iec61850Error`,
:class:`gridbind.c37118.C37118Error`, :class:`gridbind.codegen.CodegenError`). Where the side at
fault is known, a class also derives from :class:`LocalError` (this side: a bad argument, a
configuration, a request refused here) or :class:`RemoteError` (the peer sent something malformed
or answered negatively, or the link to it failed). Classes that existed before the root keep their
builtin bases (``ValueError``, ``ConnectionError``, ...) so older ``except`` clauses still work.
"""

from __future__ import annotations

__all__ = ["GridbindError", "LocalError", "RemoteError"]


class GridbindError(Exception):
    """Root of every exception gridbind raises on purpose."""


class LocalError(GridbindError):
    """A failure on this side: bad arguments or configuration, or a request refused here."""


class RemoteError(GridbindError):
    """A failure caused by the peer: malformed input, a negative answer, a lost link."""
