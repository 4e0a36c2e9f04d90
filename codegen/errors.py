"""The exception branch of codegen; its main error is a broken spec, reported as one line."""

from __future__ import annotations

from pathlib import Path

from gridbind.errors import GridbindError, LocalError


class CodegenError(GridbindError):
    """Root of every error raised by :mod:`gridbind.codegen`."""


class SpecError(CodegenError, LocalError):
    """A spec (YAML or XSD) that codegen cannot compile.

    ``str(error)`` is the one-line report the command prints: ``FILE:LOCATION: REASON`` where
    LOCATION is a line number, a path inside the document (``commands.0x05.fields[2]``), or both.
    """

    def __init__(self, file: str | Path, location: str, reason: str) -> None:
        self.file = str(file)
        self.location = location
        self.reason = reason
        super().__init__(f"{self.file}:{location}: {reason}" if location else f"{file}: {reason}")
