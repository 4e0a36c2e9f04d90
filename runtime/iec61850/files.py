"""The file store behind the ACSI file services (GetFile, SetFile, DeleteFile, GetServerDirectory
FILE, GetFileAttributeValues), confined to one root directory.

MMS names a file with a sequence of GraphicStrings (at most 64 characters each); they are joined
with ``/`` into a relative path. Everything that could leave the root is refused before any file
system access: absolute paths, ``..`` and ``.`` segments, backslashes, NUL and control characters,
and (after resolution) symbolic links pointing outside the root. Open files are bounded in
number and read in chunks no larger than the negotiated PDU allows.

A file the server pulls (obtainFile) is written to a :class:`Spool` in the root as it arrives
(not held in memory) and renamed into place when complete; spool files are never listed, and
their names are refused as file names.
"""

from __future__ import annotations

import itertools
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gridbind.errors import LocalError
from gridbind.iec61850.errors import Iec61850Error

__all__ = ["FileStoreError", "FileEntry", "FileStore", "Spool", "MAX_SEGMENT", "MAX_NAME"]

log = logging.getLogger(__name__)

MAX_SEGMENT = 64
MAX_NAME = 255
#: Name prefix of spool files in the root (never listed, refused as a file name).
SPOOL_PREFIX = ".gridbind-spool-"


class FileStoreError(Iec61850Error, LocalError):
    """A file request failed; ``code`` is an MMS file ServiceError name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# MMS ServiceError class "file" codes used here (ISO 9506-2).
FILE_NAME_AMBIGUOUS = "filename-ambiguous"
FILE_BUSY = "file-busy"
FILE_NAME_SYNTAX_ERROR = "filename-syntax-error"
CONTENT_TYPE_INVALID = "content-type-invalid"
POSITION_INVALID = "position-invalid"
FILE_ACCESS_DENIED = "file-access-denied"
FILE_NON_EXISTENT = "file-non-existent"
DUPLICATE_FILENAME = "duplicate-filename"
INSUFFICIENT_SPACE = "insufficient-space-in-filestore"


@dataclass(frozen=True)
class FileEntry:
    """A file's name (relative to the root, ``/``-separated), size in octets and mtime (s)."""

    name: str
    size: int
    mtime: float


class Spool:
    """A file being received, written to a temporary file in the store's root; at most
    ``limit`` octets. :meth:`FileStore.store` renames it into place; :meth:`discard` drops it."""

    def __init__(self, root: Path, limit: int) -> None:
        fd, name = tempfile.mkstemp(prefix=SPOOL_PREFIX, suffix=".part", dir=root)
        self.path = Path(name)
        # unbuffered: each piece (one PDU) goes straight to the file
        self._handle: BinaryIO | None = os.fdopen(fd, "wb", buffering=0)
        self.limit = limit
        self.size = 0

    def write(self, data: bytes) -> None:
        """Append ``data``; INSUFFICIENT_SPACE beyond the limit (nothing is written then)."""
        if self._handle is None:
            raise FileStoreError(FILE_ACCESS_DENIED, "spool already closed")
        if self.size + len(data) > self.limit:
            raise FileStoreError(INSUFFICIENT_SPACE, f"file larger than {self.limit}")
        self._handle.write(data)
        self.size += len(data)

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def discard(self) -> None:
        """Drop the received part (idempotent)."""
        self._close()
        self.path.unlink(missing_ok=True)


@dataclass
class _Open:
    name: str
    handle: BinaryIO
    size: int


class FileStore:
    """Files under ``root``; ``max_open`` files may be open at once (GetFile in progress).

    SetFile never replaces an existing file (``duplicate-filename``) unless ``allow_overwrite``.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        writable: bool = True,
        max_open: int = 16,
        max_file_size: int = 64 * 1024 * 1024,
        allow_overwrite: bool = False,
    ) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise FileStoreError(FILE_NON_EXISTENT, f"file store root {self.root} is not a folder")
        self.writable = writable
        self.allow_overwrite = allow_overwrite
        self.max_open = max_open
        self.max_file_size = max_file_size
        self._open: dict[int, _Open] = {}
        self._ids = itertools.count(1)

    # ---------------------------------------------------------------- names
    @staticmethod
    def check_name(segments: list[str] | str) -> str:
        """Validate an MMS FileName; returns the joined relative name."""
        if isinstance(segments, str):
            segments = [segments]
        if not segments:
            raise FileStoreError(FILE_NAME_SYNTAX_ERROR, "empty file name")
        parts: list[str] = []
        for seg in segments:
            if len(seg) > MAX_SEGMENT:
                raise FileStoreError(FILE_NAME_SYNTAX_ERROR, f"name segment over {MAX_SEGMENT}")
            if seg.startswith("/") or "\\" in seg or any(ord(c) < 32 or c == "\x7f" for c in seg):
                raise FileStoreError(FILE_NAME_SYNTAX_ERROR, f"illegal file name {seg!r}")
            for part in seg.split("/"):
                if part in ("", ".", "..") or part.startswith(SPOOL_PREFIX):
                    raise FileStoreError(FILE_NAME_SYNTAX_ERROR, f"illegal file name {seg!r}")
                parts.append(part)
        name = "/".join(parts)
        if len(name) > MAX_NAME:
            raise FileStoreError(FILE_NAME_SYNTAX_ERROR, f"file name over {MAX_NAME}")
        return name

    @classmethod
    def _nameable(cls, name: str) -> bool:
        """True when ``name`` is a valid MMS FileName (GraphicString: printable ASCII)."""
        if any(not " " <= c <= "~" for c in name):
            return False
        try:
            cls.check_name(name.split("/"))
        except FileStoreError:
            return False
        return True

    def path_of(self, segments: list[str] | str) -> Path:
        """The path of a file name inside the root (refuses anything that leaves it)."""
        name = self.check_name(segments)
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise FileStoreError(FILE_ACCESS_DENIED, f"{name!r} is outside the file store")
        return path

    def _entry(self, path: Path) -> FileEntry:
        st = path.stat()
        return FileEntry(path.relative_to(self.root).as_posix(), st.st_size, st.st_mtime)

    # ---------------------------------------------------------------- directory
    def directory(self, spec: list[str] | str | None = None, continue_after: str | None = None):
        """Entries of the whole store (or of one folder or file), sorted by name."""
        if spec:
            base = self.path_of(spec)
            if base.is_file():
                entries = [self._entry(base)]
            elif base.is_dir():
                entries = self._walk(base)
            else:
                raise FileStoreError(FILE_NON_EXISTENT, f"no file {self.check_name(spec)!r}")
        else:
            entries = self._walk(self.root)
        if continue_after is not None:
            entries = [e for e in entries if e.name > continue_after]
        return entries

    def _walk(self, base: Path) -> list[FileEntry]:
        entries = []
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            dirnames.sort()
            for fn in filenames:
                if fn.startswith(SPOOL_PREFIX):
                    continue  # a file still arriving
                path = Path(dirpath, fn)
                try:
                    if not path.resolve().is_relative_to(self.root) or not path.is_file():
                        continue
                    entry = self._entry(path)
                    if not self._nameable(entry.name):
                        # no MMS FileName can carry it: listing it would break the whole page
                        log.warning("file store: %r has no valid MMS file name; not listed", path)
                        continue
                    entries.append(entry)
                except OSError:
                    continue
        return sorted(entries, key=lambda e: e.name)

    def attributes(self, segments: list[str] | str) -> FileEntry:
        """GetFileAttributeValues: size and last modification of one file."""
        path = self.path_of(segments)
        if not path.is_file():
            raise FileStoreError(FILE_NON_EXISTENT, f"no file {self.check_name(segments)!r}")
        return self._entry(path)

    # ---------------------------------------------------------------- GetFile
    def open(self, segments: list[str] | str, position: int = 0) -> tuple[int, FileEntry]:
        """fileOpen: returns (frsmID, attributes)."""
        if len(self._open) >= self.max_open:
            raise FileStoreError(FILE_BUSY, f"more than {self.max_open} open files")
        path = self.path_of(segments)
        if not path.is_file():
            raise FileStoreError(FILE_NON_EXISTENT, f"no file {self.check_name(segments)!r}")
        entry = self._entry(path)
        if not 0 <= position <= entry.size:
            raise FileStoreError(POSITION_INVALID, f"position {position} beyond {entry.size}")
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise FileStoreError(FILE_ACCESS_DENIED, f"cannot open {entry.name}: {exc}") from None
        handle.seek(position)
        frsm = next(self._ids)
        self._open[frsm] = _Open(entry.name, handle, entry.size)
        return frsm, entry

    def read(self, frsm: int, max_bytes: int) -> tuple[bytes, bool]:
        """fileRead: up to ``max_bytes`` and whether more follows."""
        state = self._open.get(frsm)
        if state is None:
            raise FileStoreError(FILE_NON_EXISTENT, f"no open file {frsm}")
        data = state.handle.read(max(1, max_bytes))
        more = state.handle.tell() < state.size
        return data, more

    def close(self, frsm: int) -> None:
        """fileClose."""
        state = self._open.pop(frsm, None)
        if state is None:
            raise FileStoreError(FILE_NON_EXISTENT, f"no open file {frsm}")
        state.handle.close()

    def close_all(self, frsms: list[int] | None = None) -> None:
        """Close the given (or all) open files, e.g. when their association ends."""
        for frsm in list(self._open if frsms is None else frsms):
            state = self._open.pop(frsm, None)
            if state is not None:
                state.handle.close()

    # ---------------------------------------------------------------- SetFile, DeleteFile
    def check_target(self, segments: list[str] | str, *, overwrite: bool | None = None) -> Path:
        """What SetFile checks before it fetches anything: the store is writable, the name is
        valid and inside the root, and no file of that name exists (unless overwriting is
        allowed: ``overwrite``, else :attr:`allow_overwrite`) or it is not open."""
        if not self.writable:
            raise FileStoreError(FILE_ACCESS_DENIED, "the file store is read-only")
        path = self.path_of(segments)
        if overwrite is None:
            overwrite = self.allow_overwrite
        if path.exists() and (not overwrite or not path.is_file()):
            raise FileStoreError(
                DUPLICATE_FILENAME,
                f"{self.check_name(segments)!r} exists and this server does not overwrite files",
            )
        if self._is_open(path):
            raise FileStoreError(FILE_BUSY, f"{self.check_name(segments)!r} is open")
        return path

    def spool(self) -> Spool:
        """A :class:`Spool` for a file about to arrive (at most :attr:`max_file_size`)."""
        if not self.writable:
            raise FileStoreError(FILE_ACCESS_DENIED, "the file store is read-only")
        try:
            return Spool(self.root, self.max_file_size)
        except OSError as exc:
            raise FileStoreError(INSUFFICIENT_SPACE, f"cannot spool: {exc}") from None

    def store(
        self, segments: list[str] | str, data: bytes | Spool, *, overwrite: bool | None = None
    ) -> FileEntry:
        """Write a whole file (the end of SetFile/obtainFile), from bytes or a :class:`Spool`
        (consumed: renamed into place or discarded); atomic by rename. An existing file is
        ``duplicate-filename`` unless ``overwrite`` (default :attr:`allow_overwrite`)."""
        spool = data if isinstance(data, Spool) else None
        try:
            size = spool.size if spool is not None else len(data)  # type: ignore[arg-type]
            if size > self.max_file_size:
                raise FileStoreError(INSUFFICIENT_SPACE, f"file larger than {self.max_file_size}")
            path = self.check_target(segments, overwrite=overwrite)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.parent.resolve().is_relative_to(self.root):
                raise FileStoreError(FILE_ACCESS_DENIED, "target folder is outside the file store")
            if spool is not None:
                spool._close()
                os.replace(spool.path, path)
            else:
                tmp = path.with_name(f".{path.name}.part")
                tmp.write_bytes(data)  # type: ignore[arg-type]
                os.replace(tmp, path)
        finally:
            if spool is not None:
                spool.discard()  # a no-op after the rename
        return self._entry(path)

    def delete(self, segments: list[str] | str) -> None:
        """fileDelete."""
        if not self.writable:
            raise FileStoreError(FILE_ACCESS_DENIED, "the file store is read-only")
        path = self.path_of(segments)
        if not path.is_file():
            raise FileStoreError(FILE_NON_EXISTENT, f"no file {self.check_name(segments)!r}")
        if self._is_open(path):
            raise FileStoreError(FILE_BUSY, f"{self.check_name(segments)!r} is open")
        path.unlink()

    def _is_open(self, path: Path) -> bool:
        name = path.relative_to(self.root).as_posix()
        return any(state.name == name for state in self._open.values())
