"""obtainFile pulls are spooled to disk (not held in memory), one per association, and one
peer cannot take every association of the server."""

from __future__ import annotations

import pytest
from test_protocol import (
    CLIENT,
    FEEDER,
    GATE,
    Recording,
    _answer,
    associate,
    opened,
    received,
    request,
    sealed,
)

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850 import mms
from gridbind.iec61850.association import AssociationCore, AssociationError, InitiateParams
from gridbind.iec61850.files import SPOOL_PREFIX, FileStore, FileStoreError
from gridbind.iec61850.protocol import Call, Reply
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.server_protocol import ServerProtocol
from gridbind.iec61850.services.acsi import ServerServices


def _server(tmp_path, **kw) -> ServerProtocol:
    services = ServerServices(load_scl(FEEDER), FileStore(tmp_path, max_file_size=10))
    return ServerProtocol(
        services, InitiateParams(), lambda pdu: len(GATE.encode(pdu)), envelopes=Recording, **kw
    )


def _spools(root) -> list:
    return [p for p in root.iterdir() if p.name.startswith(SPOOL_PREFIX)]


def _open(proto, call, size):
    attrs = mms.field_class(m.FileOpenResponse, "file_attributes")(size_of_file=size)
    (call,) = proto.answer(
        call.token, _answer(call, m.FileOpenResponse(frsm_id=4, file_attributes=attrs)), 1.0
    )
    return call


def test_pull_is_spooled_to_disk_and_dropped_on_abort(tmp_path) -> None:
    proto = _server(tmp_path)
    associate(proto)
    (call,) = proto.receive(request("1", 1, mms.obtain_file("src", "a.bin")), 1.0)
    call = _open(proto, call, 6)
    (call,) = proto.answer(
        call.token, _answer(call, m.FileReadResponse(file_data=b"abc", more_follows=True)), 1.0
    )
    (spool,) = _spools(tmp_path)
    assert spool.read_bytes() == b"abc"  # on disk, as it arrives
    # spool files are never listed, nor usable as file names
    assert proto.services.file_store().directory() == []
    with pytest.raises(FileStoreError):
        FileStore.check_name([spool.name])
    # the association ends mid-pull: the spool goes with it
    proto.peer_unavailable(CLIENT)
    proto.take_events()
    assert _spools(tmp_path) == [] and not (tmp_path / "a.bin").exists()


def test_oversized_pull_is_refused_and_leaves_nothing(tmp_path) -> None:
    proto = _server(tmp_path)
    associate(proto)
    (call,) = proto.receive(request("1", 1, mms.obtain_file("src", "a.bin")), 1.0)
    call = _open(proto, call, 4)  # announced small, sends more than max_file_size (10)
    (call,) = proto.answer(
        call.token, _answer(call, m.FileReadResponse(file_data=b"x" * 8, more_follows=True)), 1.0
    )
    (call,) = proto.answer(
        call.token, _answer(call, m.FileReadResponse(file_data=b"x" * 8, more_follows=True)), 1.0
    )
    assert isinstance(call.payload.appl_data.mmspdu.choice.service.choice,
                      m.ConfirmedServiceRequest.FileClose)  # fmt: skip
    (done,) = proto.answer(call.token, _answer(call, m.ConfirmedServiceResponse.FileClose()), 1.0)
    error = opened(done).choice
    assert mms.error_parts(error.service_error)[:2] == ("file", "insufficient-space-in-filestore")
    assert _spools(tmp_path) == [] and not (tmp_path / "a.bin").exists()


def test_one_pull_per_association(tmp_path) -> None:
    proto = _server(tmp_path)
    associate(proto, "1")
    associate(proto, "2")
    (first,) = proto.receive(request("1", 1, mms.obtain_file("src", "a.bin")), 1.0)
    assert isinstance(first, Call)
    (busy,) = proto.receive(request("1", 2, mms.obtain_file("src", "b.bin")), 1.0)
    assert isinstance(busy, Reply)
    assert mms.error_parts(opened(busy).choice.service_error)[:2] == (
        "resource",
        "capability-unavailable",
    )
    # another association of the same peer has its own
    (other,) = proto.receive(request("2", 1, mms.obtain_file("src", "c.bin")), 1.0)
    assert isinstance(other, Call)
    assert len(_spools(tmp_path)) == 2


def test_associations_per_peer_are_capped() -> None:
    core = AssociationCore(max_associations=10, max_per_peer=2)
    core.accept("a@x/IEC", "1", InitiateParams())
    core.accept("a@x/other", "2", InitiateParams())  # the same account, another resource
    with pytest.raises(AssociationError, match="a@x already holds 2 associations"):
        core.accept("a@x/IEC", "3", InitiateParams())
    core.accept("b@x/IEC", "1", InitiateParams())  # another peer still gets one


def test_server_refuses_a_peer_over_its_share(tmp_path) -> None:
    proto = _server(tmp_path, max_associations_per_peer=2)
    associate(proto, "1")
    associate(proto, "2")
    (out,) = proto.receive(
        received(sealed("3", mms.initiate_request(InitiateParams())), stype="set"), 1.0
    )
    error = opened(out).choice
    assert isinstance(error, m.Mmspdu.InitiateErrorPdu), error


def test_per_peer_cap_on_the_memory_transport() -> None:
    import asyncio

    from gridbind.iec61850.client_protocol import ServiceFailed

    from iec_testkit import memory_served, run

    async def main():
        async with memory_served(clients=2) as (server, (greedy, other), _):
            held = [await greedy.associate(server.jid) for _ in range(8)]
            with pytest.raises(ServiceFailed, match="at most 8 per peer"):
                await greedy.associate(server.jid)
            ied = await other.associate(server.jid)  # another peer is still served
            assert await ied.get_server_directory()
            await asyncio.gather(*(a.conclude() for a in held))

    run(main(), 20)


def test_per_peer_cap_is_configurable_on_the_server() -> None:
    from gridbind.iec61850.client_protocol import ServiceFailed

    from iec_testkit import memory_served, run

    async def main():
        kw = {"max_associations_per_peer": 1}
        async with memory_served(server_kw=kw) as (server, (client,), _):
            ied = await client.associate(server.jid)
            with pytest.raises(ServiceFailed, match="at most 1 per peer"):
                await client.associate(server.jid)
            await ied.conclude()
            await client.associate(server.jid)  # the slot is free again

    run(main(), 20)
