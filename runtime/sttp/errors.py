"""The exception branch of :mod:`gridbind.sttp` and the errors both wire profiles share."""

from __future__ import annotations

from gridbind.errors import GridbindError, LocalError, RemoteError

__all__ = ["DecodeError", "InvalidArgument", "MetadataError", "RequestRefused", "SttpError"]


class SttpError(GridbindError):
    """Root of every error raised by :mod:`gridbind.sttp` (both wire profiles)."""


class MetadataError(SttpError, ValueError):
    """Metadata that cannot be used: XML that is malformed, hostile or inconsistent with its
    schema (IEEE 2664), or a bad table definition, row or query (draft profile)."""


class InvalidArgument(SttpError, LocalError, ValueError):
    """An argument, option or setting given on this side that is unknown or out of range."""


class DecodeError(SttpError, RemoteError, ValueError):
    """Bytes received from the peer that do not decode (truncated or out of range)."""


class RequestRefused(SttpError, RemoteError, RuntimeError):
    """The peer refused a request (a subscription, a metadata query), in either profile."""
