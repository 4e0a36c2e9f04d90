"""SetFile (obtainFile) never replaces an existing file silently: ``duplicate-filename``, checked
before the server fetches anything and again when it stores, unless the server is configured
to allow overwriting."""

from __future__ import annotations

import pytest
from test_services_acsi import FEEDER

from gridbind.iec61850.files import FileStore, FileStoreError
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.services.acsi import ServerServices, ServiceError


def services(root, **kw) -> ServerServices:
    return ServerServices(load_scl(FEEDER), FileStore(root, **kw))


def test_existing_file_is_refused_before_the_fetch(tmp_path) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "ied.cid").write_bytes(b"original")
    svc = services(tmp_path)
    with pytest.raises(ServiceError) as err:
        svc.obtain_file_check(["cfg", "ied.cid"])
    assert (err.value.error_class, err.value.code) == ("file", "duplicate-filename")
    assert "does not overwrite" in err.value.text
    with pytest.raises(ServiceError) as err:
        svc.obtain_file_store(["cfg/ied.cid"], b"replacement")
    assert err.value.code == "duplicate-filename"
    assert (tmp_path / "cfg" / "ied.cid").read_bytes() == b"original"
    # a new name is fine, and then it is taken
    svc.obtain_file_check(["cfg", "new.cid"])
    svc.obtain_file_store(["cfg", "new.cid"], b"new")
    with pytest.raises(ServiceError) as err:
        svc.obtain_file_store(["cfg", "new.cid"], b"again")
    assert err.value.code == "duplicate-filename"


def test_name_taken_while_fetching_is_refused_at_store_time(tmp_path) -> None:
    svc = services(tmp_path)
    svc.obtain_file_check(["race.bin"])  # free when the fetch starts
    (tmp_path / "race.bin").write_bytes(b"first")  # another association's SetFile finished
    with pytest.raises(ServiceError) as err:
        svc.obtain_file_store(["race.bin"], b"second")
    assert err.value.code == "duplicate-filename"
    assert (tmp_path / "race.bin").read_bytes() == b"first"


def test_overwrite_when_configured(tmp_path) -> None:
    (tmp_path / "a.bin").write_bytes(b"old")
    svc = services(tmp_path, allow_overwrite=True)
    svc.obtain_file_check(["a.bin"])
    svc.obtain_file_store(["a.bin"], b"new")
    assert (tmp_path / "a.bin").read_bytes() == b"new"
    # a folder is never replaced by a file
    (tmp_path / "d").mkdir()
    with pytest.raises(ServiceError) as err:
        svc.obtain_file_check(["d"])
    assert err.value.code == "duplicate-filename"


def test_file_store_default_and_explicit_override(tmp_path) -> None:
    store = FileStore(tmp_path)
    store.store("x.bin", b"1")
    with pytest.raises(FileStoreError) as err:
        store.store("x.bin", b"2")
    assert err.value.code == "duplicate-filename"
    store.store("x.bin", b"3", overwrite=True)  # the application may replace its own files
    assert (tmp_path / "x.bin").read_bytes() == b"3"
    with pytest.raises(FileStoreError) as err:
        FileStore(tmp_path, writable=False).check_target("y.bin")
    assert err.value.code == "file-access-denied"


def test_file_services_need_file_handling_in_services(tmp_path) -> None:
    from gridbind.iec61850.association import AssociationCore, InitiateParams

    (tmp_path / "a.bin").write_bytes(b"a")
    text = FEEDER.read_text().replace("<FileHandling/>", "", 1)
    svc = ServerServices(load_scl(text.encode()), FileStore(tmp_path))
    assoc = AssociationCore(InitiateParams()).accept("c@t.local/x", "1", InitiateParams())
    for call in (
        lambda: svc.file_directory(assoc, None, None),
        lambda: svc.file_open(assoc, ["a.bin"], 0),
        lambda: svc.file_delete(assoc, ["a.bin"]),
        lambda: svc.obtain_file_check(["b.bin"]),
    ):
        with pytest.raises(ServiceError, match="no FileHandling") as err:
            call()
        assert err.value.code == "file-access-denied"
    assert (tmp_path / "a.bin").exists()
