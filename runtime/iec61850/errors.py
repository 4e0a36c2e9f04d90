"""The exception branch of :mod:`gridbind.iec61850`."""

from __future__ import annotations

from gridbind.errors import GridbindError, LocalError

__all__ = ["Iec61850Error", "InvalidArgument"]


class Iec61850Error(GridbindError):
    """Root of every error raised by :mod:`gridbind.iec61850` (codec, XMPP, client, server)."""


class InvalidArgument(Iec61850Error, LocalError, ValueError, TypeError):
    """An argument given on this side that is malformed, of the wrong type or out of range.

    It is a ``ValueError`` and a ``TypeError`` because those were raised before it existed.
    """
