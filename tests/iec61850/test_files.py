"""The confined file store: names, traversal refusal, directory, chunked reads, store, delete."""

from __future__ import annotations

import os

import pytest

from gridbind.iec61850.files import FileStore, FileStoreError


@pytest.fixture()
def store(tmp_path):
    root = tmp_path / "files"
    (root / "COMTRADE").mkdir(parents=True)
    (root / "COMTRADE" / "fault1.cfg").write_bytes(b"cfg" * 10)
    (root / "readme.txt").write_bytes(b"hello")
    (tmp_path / "secret").write_text("no")
    return FileStore(root)


@pytest.mark.parametrize(
    "name",
    ["../secret", "/etc/passwd", "COMTRADE/../../secret", "a\\b", "a\x00b", ".", "", "x" * 65,
     ["COMTRADE", ".."], []],
)  # fmt: skip
def test_traversal_and_bad_names_refused(store, name) -> None:
    with pytest.raises(FileStoreError) as err:
        store.path_of(name)
    assert err.value.code in ("filename-syntax-error", "file-access-denied")


def test_symlink_escape_refused(store, tmp_path) -> None:
    os.symlink(tmp_path / "secret", store.root / "link")
    with pytest.raises(FileStoreError) as err:
        store.open("link")
    assert err.value.code == "file-access-denied"
    assert "link" not in [e.name for e in store.directory()]


def test_directory_and_attributes(store) -> None:
    assert [e.name for e in store.directory()] == ["COMTRADE/fault1.cfg", "readme.txt"]
    assert [e.name for e in store.directory(continue_after="COMTRADE/fault1.cfg")] == ["readme.txt"]
    assert [e.name for e in store.directory("COMTRADE")] == ["COMTRADE/fault1.cfg"]
    assert store.attributes(["COMTRADE", "fault1.cfg"]).size == 30
    with pytest.raises(FileStoreError) as err:
        store.attributes("nope.txt")
    assert err.value.code == "file-non-existent"


def test_chunked_read_store_delete(store) -> None:
    frsm, entry = store.open("COMTRADE/fault1.cfg")
    chunks, more = [], True
    while more:
        data, more = store.read(frsm, 7)
        chunks.append(data)
    assert b"".join(chunks) == b"cfg" * 10 and len(chunks) == 5
    with pytest.raises(FileStoreError) as err:
        store.delete("COMTRADE/fault1.cfg")  # busy while open
    assert err.value.code == "file-busy"
    store.close(frsm)
    with pytest.raises(FileStoreError):
        store.close(frsm)
    assert store.store("new/set.bin", b"\x00\x01").size == 2
    assert (store.root / "new" / "set.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(FileStoreError) as err:
        store.store("new/set.bin", b"x", overwrite=False)
    assert err.value.code == "duplicate-filename"
    store.delete("new/set.bin")
    with pytest.raises(FileStoreError):
        store.delete("new/set.bin")
    ro = FileStore(store.root, writable=False)
    with pytest.raises(FileStoreError) as err:
        ro.delete("readme.txt")
    assert err.value.code == "file-access-denied"
    limited = FileStore(store.root, max_open=1)
    limited.open("readme.txt")
    with pytest.raises(FileStoreError) as err:
        limited.open("readme.txt")
    assert err.value.code == "file-busy"
    limited.close_all()
