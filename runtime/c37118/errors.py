"""The one exception root of :mod:`gridbind.c37118` and its two branches.

:class:`FrameError` is what a peer sent (a bad CRC, a size that does not add up, an absurd count);
:class:`ConfigurationError` is what this side was asked to build and cannot (a name too long for
CFG-2, a value an integer format cannot carry). Both carry a message naming the field at fault.
"""

from __future__ import annotations

from gridbind.errors import GridbindError, LocalError, RemoteError


class C37118Error(GridbindError):
    """Root of every error raised by :mod:`gridbind.c37118`."""


class FrameError(C37118Error, RemoteError):
    """A received frame is malformed, fails its CRC or does not match the configuration."""


class ConfigurationError(C37118Error, LocalError):
    """A configuration or value this side was asked to encode cannot be encoded."""
