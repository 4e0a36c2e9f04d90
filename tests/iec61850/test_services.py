"""Every ACSI service, positive and negative, between the asyncio Client and an IED served from
tests/iec61850/data/feeder.scd, on the in-memory transport (the same stanzas, codec gate and
protocol cores as over XMPP; tests/iec61850/test_e2e.py runs a smoke of it through Prosody)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850 import codec, mms
from gridbind.iec61850 import mmsdata as d
from gridbind.iec61850.client import (
    AssociationAborted,
    Client,
    DataAccessFailed,
    RequestRejected,
    ServiceFailed,
)
from gridbind.iec61850.envelope import ClearContext
from gridbind.iec61850.model import quality_bits
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.server import IedServer
from gridbind.iec61850.stanza import StanzaError

from iec_testkit import memory_served, run, send_unchecked, unchecked_element

FEEDER = Path(__file__).parent / "data" / "feeder.scd"


@contextlib.asynccontextmanager
async def served(tmp_path=None, *, server_kw=None, client_kw=None, clients=1):
    files = None
    if tmp_path is not None:
        files = tmp_path / "files"
        (files / "COMTRADE").mkdir(parents=True)
        (files / "COMTRADE" / "fault1.cfg").write_bytes(bytes(range(256)) * 40)
        (files / "readme.txt").write_text("feeder 1")
    async with memory_served(
        FEEDER, files=files, clients=clients, server_kw=server_kw, client_kw=client_kw
    ) as (server, apps, net):
        yield (server, apps[0]) if clients == 1 else (server, apps, net)


def _td(kind: str, **fields) -> m.TypeDescription:
    return mms.choice_of(
        m.TypeDescription, kind, mms.alternative(m.TypeDescription, kind)(**fields)
    )


def _structure(*components) -> m.TypeDescription:
    seq = m.TypeDescription.Structure.Components.Sequence
    return m.TypeDescription(
        choice=m.TypeDescription.Structure(
            components=m.TypeDescription.Structure.Components(
                sequence=[
                    seq(component_name=n, component_type=m.TypeSpecification(choice=t))
                    for n, t in components
                ]
            )
        )
    )


async def directories_and_values(server, client) -> None:
    """GetServerDirectory ... GetDataValues, positive and negative (also run through Prosody)."""
    ied = await client.associate(server.jid)
    assert ied.params.max_pdu_size == 65000
    assert await ied.get_server_directory() == ["FDR1LD0", "FDR1MEAS", "FDR1PROT"]
    assert await ied.get_logical_device_directory("FDR1LD0") == ["GGIO1", "LLN0", "LPHD1"]
    assert await ied.get_logical_node_directory("FDR1LD0/GGIO1") == [
        "AnOut1", "Beh", "Ind1", "Ind2", "IntIn1", "SPCSO1",
    ]  # fmt: skip
    assert await ied.get_logical_node_directory("FDR1LD0/LLN0", "DATA-SET") == [
        "Measurements", "Status",
    ]  # fmt: skip
    assert await ied.get_logical_node_directory("FDR1LD0/LLN0", "URCB") == [
        "urcbStatus01", "urcbStatus02",
    ]  # fmt: skip
    assert await ied.get_logical_node_directory("FDR1PROT/LLN0", "SGCB") == ["SGCB"]
    assert await ied.get_data_directory("FDR1MEAS/MMXU1.TotW") == [
        "db",
        "limits",
        "mag",
        "q",
        "t",
        "units",
    ]
    td = await ied.get_data_definition("FDR1MEAS/MMXU1.TotW", "MX")
    assert td == m.TypeDescription(
        choice=m.TypeDescription.Structure(
            components=m.TypeDescription.Structure.Components(
                sequence=[
                    m.TypeDescription.Structure.Components.Sequence(
                        component_name=name, component_type=m.TypeSpecification(choice=sub)
                    )
                    for name, sub in (
                        ("mag", _structure(("f", _td("floating-point", format_width=32,
                                                     exponent_width=8)))),
                        ("q", _td("bit-string", value=13)),
                        ("t", _td("utc-time")),
                    )
                ]
            )
        )
    )  # fmt: skip
    assert await ied.get_data_values("FDR1MEAS/MMXU1.TotW.mag.f", "MX") == 1500.5
    server.model.update("FDR1MEAS/MMXU1.TotW.mag.f", 99.25, quality=quality_bits("invalid"))
    value = await ied.get_data_values("FDR1MEAS/MMXU1.TotW", "MX")
    assert value["mag"] == {"f": 99.25} and value["q"] == "0100000000000"
    assert value["t"].seconds > 1_700_000_000
    assert await ied.get_data_values("FDR1LD0/LLN0.Mod.stVal", "ST") == 1
    all_st = await ied.get_all_data_values("FDR1LD0/GGIO1", "ST")
    assert all_st["Ind1"]["stVal"] is True and all_st["IntIn1"]["stVal"] == 42
    everything = await ied.get_all_data_values("FDR1MEAS/MMXU1")
    assert list(everything) == ["MX", "ST", "CF"]
    assert everything["CF"]["TotW"]["db"] == 500
    assert everything["CF"]["TotW"]["limits"] == [0, 0, 0]
    # arrays: one element through alternateAccess (index), read and written
    await ied.set_data_values("FDR1MEAS/MMXU1.TotW.limits(1)", "CF", 7)
    assert await ied.get_data_values("FDR1MEAS/MMXU1.TotW.limits(1)", "CF") == 7
    assert await ied.get_data_values("FDR1MEAS/MMXU1.TotW.limits", "CF") == [0, 7, 0]
    await ied.set_data_values("FDR1MEAS/MMXU1.TotW.limits", "CF", [1, 2, 3])
    assert server.model.read("FDR1MEAS/MMXU1.TotW.limits", "CF") == [1, 2, 3]
    with pytest.raises(DataAccessFailed) as err:
        await ied.get_data_values("FDR1MEAS/MMXU1.TotW.limits(3)", "CF")
    assert err.value.code == "object-non-existent"
    tree = await ied.browse()
    assert "stVal" in tree["FDR1LD0"]["GGIO1"]["ST"]["Ind1"]
    # negative: wrong FC, unknown object, FC XX, too-long reference, type mismatch
    with pytest.raises(ServiceFailed) as err:
        await ied.get_data_values("FDR1LD0/GGIO1.Ind1.stVal", "MX")
    assert err.value.code == "object-non-existent"
    with pytest.raises(ServiceFailed):
        await ied.get_data_values("FDR1LD0/GGIO9.Ind1", "ST")
    with pytest.raises(ServiceFailed):
        await ied.get_data_values("FDR1LD0/GGIO1.Ind1", "XX")
    with pytest.raises(ValueError):
        await ied.get_data_values("FDR1LD0/GGIO1." + "A" * 130, "ST")
    with pytest.raises(ServiceFailed):
        await ied.get_logical_device_directory("NOPE")
    for call in (
        ied.get_logical_node_directory("FDR1LD0/GGIO9"),
        ied.get_logical_node_directory("FDR1LD0/GGIO9", "DATA-SET"),
        ied.get_data_directory("FDR1MEAS/MMXU1.Nope"),
        ied.get_data_definition("FDR1MEAS/MMXU1.Nope", "MX"),
    ):
        with pytest.raises(ServiceFailed) as err:
            await call
        assert err.value.code == "object-non-existent"
    with pytest.raises(ServiceFailed):
        await ied.get_all_data_values("FDR1LD0/GGIO9")
    with pytest.raises(ServiceFailed):
        await ied.get_all_data_values("FDR1LD0/GGIO1", "MS")
    with pytest.raises(RequestRejected):  # this server has no file store
        await ied.get_server_directory("FILE")
    await ied.conclude()
    assert not ied.open
    with pytest.raises(AssociationAborted):
        await ied.get_server_directory()


@pytest.mark.timeout(20)
def test_directories_and_values() -> None:
    async def main():
        async with served() as (server, client):
            await directories_and_values(server, client)

    run(main())


@pytest.mark.timeout(20)
def test_set_data_values_policy_hooks_types() -> None:
    async def main():
        async with served() as (server, client):
            refused = []
            server.model.add_write_hook(
                lambda m, attr, fc, value, who: (
                    refused.append(who) or "object-access-denied" if value == "locked" else None
                )
            )
            ied = await client.associate(server.jid)
            await ied.set_data_values("FDR1LD0/GGIO1.Ind1.d", "DC", "breaker 7")
            assert server.model.read("FDR1LD0/GGIO1.Ind1.d", "DC") == "breaker 7"
            await ied.set_data_values(
                "FDR1MEAS/MMXU1.TotW.units", "CF", {"SIUnit": 33, "multiplier": 3}
            )
            assert server.model.read("FDR1MEAS/MMXU1.TotW.units.SIUnit", "CF") == 33
            with pytest.raises(DataAccessFailed) as err:
                await ied.set_data_values("FDR1LD0/GGIO1.Ind1.stVal", "ST", False)
            assert err.value.code == "object-access-denied"
            with pytest.raises(DataAccessFailed) as err:
                await ied.set_data_values("FDR1LD0/GGIO1.Ind1.d", "DC", "locked")
            assert err.value.code == "object-access-denied" and refused[0].endswith("/IEC")
            with pytest.raises(DataAccessFailed) as err:
                await ied.set_data_values("FDR1LD0/GGIO1.SPCSO1.ctlModel", "CF", 42)
            assert err.value.code == "object-value-invalid"
            # type mismatch at the MMS level: send an integer to a visible-string
            response = await ied.request(
                mms.write([mms.dom("FDR1LD0", "GGIO1$DC$Ind1$d")], [d.integer(5)])
            )
            assert mms.write_results(response) == ["type-inconsistent"]
            with pytest.raises(TypeError):
                await ied.set_data_values("FDR1LD0/GGIO1.Ind1.d", "DC", 5)

    run(main())


@pytest.mark.timeout(20)
def test_data_sets() -> None:
    async def main():
        async with served() as (server, client):
            ied = await client.associate(server.jid)
            assert await ied.get_data_set_directory("FDR1LD0/LLN0.Status") == [
                ("FDR1LD0/GGIO1.Ind1.stVal", "ST"),
                ("FDR1LD0/GGIO1.Ind1.q", "ST"),
                ("FDR1LD0/GGIO1.Ind2", "ST"),
                ("FDR1MEAS/MMXU1.TotW.mag.f", "MX"),
            ]
            values = await ied.get_data_set_values("FDR1LD0/LLN0.Status")
            assert values[0] is True and values[3] == 1500.5
            assert set(values[2]) == {"stVal", "q", "t"}
            members = [("FDR1LD0/GGIO1.Ind1.d", "DC"), ("FDR1LD0/GGIO1.Ind1.stVal", "ST")]
            await ied.create_data_set("FDR1LD0/GGIO1.Mine", members)
            assert await ied.get_logical_node_directory("FDR1LD0/GGIO1", "DATA-SET") == ["Mine"]
            results = await ied.set_data_set_values("FDR1LD0/GGIO1.Mine", ["via set", True])
            assert results == [None, "object-access-denied"]  # per-member results
            assert server.model.read("FDR1LD0/GGIO1.Ind1.d", "DC") == "via set"
            await ied.create_data_set("@temp", [("FDR1LD0/GGIO1.IntIn1.stVal", "ST")])
            assert await ied.get_data_set_values("@temp") == [42]
            with pytest.raises(ServiceFailed) as err:
                await ied.create_data_set("FDR1LD0/GGIO1.Mine", members)
            assert err.value.code == "object-exists"
            with pytest.raises(ServiceFailed) as err:
                await ied.create_data_set("FDR1LD0/GGIO1.Bad", [("FDR1LD0/GGIO1.Nope", "ST")])
            assert err.value.code == "object-undefined"
            with pytest.raises(ServiceFailed):  # referenced by control blocks and from SCL
                await ied.delete_data_set("FDR1LD0/LLN0.Status")
            # a client-made data set is refused deletion while a control block references it
            await ied.create_data_set("FDR1LD0/LLN0.Used", [("FDR1LD0/GGIO1.Ind2", "ST")])
            await ied.set_gocb_values("FDR1LD0/LLN0.gcbStatus", DatSet="FDR1LD0/LLN0.Used")
            with pytest.raises(ServiceFailed):
                await ied.delete_data_set("FDR1LD0/LLN0.Used")
            await ied.set_gocb_values("FDR1LD0/LLN0.gcbStatus", DatSet="FDR1LD0/LLN0.Status")
            await ied.delete_data_set("FDR1LD0/LLN0.Used")
            await ied.delete_data_set("FDR1LD0/GGIO1.Mine")
            await ied.delete_data_set("@temp")
            with pytest.raises(ServiceFailed):
                await ied.delete_data_set("FDR1LD0/GGIO1.Mine")
            with pytest.raises(ServiceFailed):
                await ied.get_data_set_values("@temp")
            # a non-persistent data set is gone with its association
            await ied.create_data_set("@gone", [("FDR1LD0/GGIO1.IntIn1.stVal", "ST")])
            await ied.conclude()
            again = await client.associate(server.jid)
            with pytest.raises(ServiceFailed):
                await again.get_data_set_directory("@gone")

    run(main())


@pytest.mark.timeout(20)
def test_setting_groups_and_control_blocks() -> None:
    async def main():
        async with served() as (server, client):
            ied = await client.associate(server.jid)
            sgcb = await ied.get_sgcb_values("FDR1PROT")
            assert (sgcb["NumOfSG"], sgcb["ActSG"], sgcb["EditSG"]) == (3, 1, 0)
            ref = "FDR1PROT/IPTOC1.StrVal.setMag.f"
            assert await ied.get_data_values(ref, "SG") == 100.0
            with pytest.raises(DataAccessFailed) as err:
                await ied.set_edit_sg_value(ref, 1.0)
            assert err.value.code == "temporarily-unavailable"
            await ied.select_edit_sg("FDR1PROT", 2)
            assert await ied.get_edit_sg_value(ref) == 200.0
            await ied.set_edit_sg_value(ref, 250.0)
            await ied.confirm_edit_sg_values("FDR1PROT")
            await ied.select_active_sg("FDR1PROT", 2)
            assert await ied.get_data_values(ref, "SG") == 250.0
            assert (await ied.get_sgcb_values("FDR1PROT"))["ActSG"] == 2
            with pytest.raises(DataAccessFailed):
                await ied.select_active_sg("FDR1PROT", 7)
            with pytest.raises(DataAccessFailed):
                await ied.set_data_values(ref, "SG", 1.0)  # SG is never written directly
            with pytest.raises(ServiceFailed):
                await ied.get_sgcb_values("FDR1LD0")
            # GoCB / MSVCB
            gocb = await ied.get_gocb_values("FDR1LD0/LLN0.gcbStatus")
            assert gocb["GoID"] == "FDR1_GOOSE" and gocb["DatSet"] == "FDR1LD0/LLN0.Status"
            await ied.set_gocb_values(
                "FDR1LD0/LLN0.gcbStatus", GoID="NEW", DatSet="FDR1LD0/LLN0.Measurements"
            )
            await ied.set_gocb_values("FDR1LD0/LLN0.gcbStatus", GoEna=True)
            with pytest.raises(DataAccessFailed) as err:
                await ied.set_gocb_values("FDR1LD0/LLN0.gcbStatus", GoID="LATE")
            assert err.value.code == "temporarily-unavailable"
            with pytest.raises(DataAccessFailed):
                await ied.set_gocb_values("FDR1LD0/LLN0.gcbStatus", ConfRev=9)
            msv = await ied.get_msvcb_values("FDR1LD0/LLN0.msvcbMeas")
            assert msv["SmpRate"] == 80 and msv["MsvID"] == "FDR1_SV"
            await ied.set_msvcb_values("FDR1LD0/LLN0.msvcbMeas", SmpRate=256, SvEna=True)
            assert server.model.read("FDR1LD0/LLN0.msvcbMeas.SmpRate", "MS") == 256
            with pytest.raises(DataAccessFailed):
                await ied.set_msvcb_values("FDR1LD0/LLN0.msvcbMeas", DatSet="FDR1LD0/LLN0.Nope")

    run(main())


@pytest.mark.timeout(20)
def test_files(tmp_path) -> None:
    async def main():
        async with served(tmp_path, server_kw={"max_pdu_size": 2048}) as (
            server,
            client,
        ):
            ied = await client.associate(server.jid)
            assert ied.params.max_pdu_size == 2048
            assert await ied.get_server_directory("FILE") == ["COMTRADE/fault1.cfg", "readme.txt"]
            attrs = await ied.get_file_attribute_values("COMTRADE/fault1.cfg")
            assert attrs["size"] == 10240 and attrs["modified"].endswith("Z")
            assert await ied.get_file("COMTRADE/fault1.cfg") == bytes(range(256)) * 40  # paged
            await ied.delete_file("readme.txt")
            assert not (tmp_path / "files" / "readme.txt").exists()
            for bad in ("../../etc/passwd", "nope.txt"):
                with pytest.raises(ServiceFailed) as err:
                    await ied.get_file(bad)
                assert err.value.error_class == "file"
                with pytest.raises(ServiceFailed) as err:
                    await ied.get_file_attribute_values(bad)
                assert err.value.error_class == "file"
            with pytest.raises(ServiceFailed):
                await ied.delete_file("readme.txt")
            # SetFile (obtainFile): the server reads the file back from this client, paged
            payload = bytes(range(251)) * 30
            await ied.set_file("upload/new.bin", payload)
            assert (tmp_path / "files" / "upload" / "new.bin").read_bytes() == payload
            assert await ied.get_file("upload/new.bin") == payload
            with pytest.raises(ServiceFailed) as err:
                await ied.set_file("../outside.bin", b"x")
            assert err.value.error_class == "file"
            assert not (tmp_path / "outside.bin").exists()
            with pytest.raises(ServiceFailed) as err:  # the client does not offer that source
                await ied.request(mms.obtain_file("not-offered", "x.bin"))
            assert err.value.error_class == "file"
            assert await ied.get_server_directory("FILE") == [
                "COMTRADE/fault1.cfg",
                "upload/new.bin",
            ]

    run(main())


@pytest.mark.timeout(20)
def test_set_file_offers_are_scoped_to_their_association(tmp_path) -> None:
    async def ask(server, to, assoc_id, request, iq_type="set", invoke_id=1):
        """``server`` sends a request to the client as an obtainFile pull does; the answer."""
        pdu = mms.confirmed_request(invoke_id, request)
        payload = ClearContext(to, assoc_id).seal(pdu, 0.0) if assoc_id else pdu
        answer = await server.transport.request(to, iq_type, payload)
        return ClearContext(to, assoc_id).open(answer.payload, 0.0).choice

    async def main():
        async with served(tmp_path) as (server, client):
            (tmp_path / "files2").mkdir()
            other = IedServer(
                load_scl(FEEDER),
                transport=client.transport.network.endpoint("ied2@memory.test"),
                files_root=tmp_path / "files2",
            )
            await other.start()
            try:
                me = client.transport.full_jid
                ied, second, ied2 = await asyncio.gather(
                    client.associate(server.jid),
                    client.associate(server.jid),
                    client.associate(other.jid),
                )
                data = b"for the first association only"
                source = client.protocol.offer(ied.assoc, data)
                # the association the offer was made in reads it
                opened = await ask(server, me, ied.id, mms.file_open([source]))
                assert opened.service.choice.file_attributes.size_of_file == len(data)
                frsm = opened.service.choice.frsm_id
                # a second association with the same server: file-non-existent
                refused = await ask(server, me, second.id, mms.file_open([source]))
                assert mms.error_parts(refused.service_error)[1] == "file-non-existent"
                # another associated server: file-non-existent
                refused = await ask(other, me, ied2.id, mms.file_open([source]))
                assert mms.error_parts(refused.service_error)[1] == "file-non-existent"
                # another server naming the first association's id: not its association
                with pytest.raises(StanzaError) as err:
                    await ask(other, me, ied.id, mms.file_open([source]))
                assert err.value.condition == "item-not-found"
                # outside any association: not-authorized
                with pytest.raises(StanzaError) as err:
                    await ask(other, me, None, mms.file_open([source]))
                assert err.value.condition == "not-authorized"
                # the client gates a server's requests strictly too: a file name segment longer
                # than the schema allows is a bad-request, however valid the association
                too_long = ClearContext(me, ied.id).seal(
                    mms.confirmed_request(3, mms.file_open(["x" * 300])), 0.0
                )
                with pytest.raises(StanzaError) as err:
                    await server.transport.request(me, "set", unchecked_element(too_long))
                assert err.value.condition == "bad-request"
                # ... and a request the client does not serve is rejected
                with pytest.raises(StanzaError) as err:
                    await ask(server, me, ied.id, mms.file_delete("x"))
                assert err.value.condition == "bad-request"
                # open file handles are per association too
                read = mms.file_read(frsm)
                answer = await ask(server, me, second.id, read, "get", 2)
                assert isinstance(answer, m.ConfirmedErrorPdu)
                answer = await ask(server, me, ied.id, read, "get", 2)
                assert answer.service.choice.file_data == data
                assert answer.service.choice.more_follows is False
                client.protocol.withdraw(ied.assoc, source)
                # SetFile still works in every association, each with its own offer
                await second.set_file("second.bin", b"2")
                await ied2.set_file("other.bin", b"3")
                assert (tmp_path / "files" / "second.bin").read_bytes() == b"2"
                assert (tmp_path / "files2" / "other.bin").read_bytes() == b"3"
                assert not client.protocol.offers(second.assoc)
                assert not client.protocol.offers(ied2.assoc)
            finally:
                await other.close()

    run(main())


@pytest.mark.timeout(20)
def test_paging_with_small_pdu_and_two_clients() -> None:
    async def main():
        async with served(client_kw={"max_pdu_size": 1024}) as (
            server,
            client,
        ):
            other = Client(transport=client.transport.network.endpoint("second@memory.test"))
            await other.connect()
            try:
                small, big = await asyncio.gather(
                    client.associate(server.jid), other.associate(server.jid)
                )
                assert small.params.max_pdu_size == 1024
                sent = []
                original = small.request

                async def counting(request, **kw):
                    sent.append(mms.service_of(request))
                    return await original(request, **kw)

                small.request = counting
                names_small = await small._names("namedVariable", "domainSpecific", "FDR1LD0")
                assert len(sent) > 3  # moreFollows/continueAfter paging
                with pytest.raises(ServiceFailed) as err:  # too big for 1024 octets
                    await small.get_all_data_values("FDR1LD0/LLN0")
                assert (err.value.error_class, err.value.code) == ("service", "pdu-size")
                assert (await big.get_all_data_values("FDR1LD0/LLN0"))["ST"]["Mod"]["stVal"] == 1
                names_big = await big._names("namedVariable", "domainSpecific", "FDR1LD0")
                assert names_small == names_big and len(names_big) == 183  # (the LCB status: +4)
                small.name_service = "extendedGetNameList"  # the 8-2 variant, same paging
                sent.clear()
                assert await small._names("namedVariable", "domainSpecific", "FDR1LD0") == names_big
                assert set(sent) == {"extendedGetNameList"} and len(sent) > 3
                both = await asyncio.gather(
                    *[big.get_data_values("FDR1LD0/GGIO1.IntIn1.stVal", "ST") for _ in range(20)],
                    *[small.get_data_values("FDR1LD0/GGIO1.Ind1.stVal", "ST") for _ in range(20)],
                )
                assert both == [42] * 20 + [True] * 20
                assert len(server.core.associations) == 2
            finally:
                await other.close()

    run(main())


@pytest.mark.timeout(20)
def test_association_errors() -> None:
    async def main():
        async with served(server_kw={"max_pdu_size": 1024, "max_associations": 2}) as (
            server,
            client,
        ):
            ied = await client.associate(server.jid)
            # oversized PDU -> rejectPDU (invalid-pdu)
            with pytest.raises(RequestRejected) as err:
                await ied.create_data_set("@big", [("FDR1LD0/GGIO1.Ind1.stVal", "ST")] * 40)
            assert err.value.reason == "pdu-error:invalid-pdu"
            # unsupported service: the client refuses locally, the server rejects when forced
            with pytest.raises(RequestRejected):
                await ied.request(mms.obtain_file("a", "b"))
            ied.assoc.peer_services = ied.assoc.peer_services | {"obtainFile"}
            with pytest.raises(RequestRejected) as err:
                await ied.request(mms.obtain_file("a", "b"))
            assert err.value.reason == "confirmed-requestPDU:unrecognized-service"
            # unknown association id / outside an association -> stanza errors
            names = mms.confirmed_request(1, mms.get_name_list("domain", "vmdSpecific"))
            with pytest.raises(StanzaError) as err:
                await client.transport.request(
                    server.jid, "get", ClearContext(server.jid, "999").seal(names, 0.0)
                )
            assert err.value.condition == "item-not-found"
            with pytest.raises(StanzaError) as err:
                await client.transport.request(server.jid, "get", names)
            assert err.value.condition == "not-authorized"
            # wrong iq type for the service (Table D.1)
            with pytest.raises(StanzaError) as err:
                await client.transport.request(
                    server.jid, "set", ClearContext(server.jid, ied.id).seal(names, 0.0)
                )
            assert err.value.condition == "bad-request"
            # a reference longer than an Identifier allows: the client's encoder refuses it,
            # and sent anyway, the server's codec gate (a rejectPDU and bad-request)
            long_name = mms.dom("FDR1LD0", "GGIO1$ST$" + "A" * 70)
            with pytest.raises(codec.EncodeError):
                await ied.request(mms.read(long_name))
            with pytest.raises(StanzaError) as err:
                await send_unchecked(ied, mms.read(long_name))
            assert err.value.text.startswith("pdu-error:invalid-pdu")
            # Data nested deeper than the negotiated nesting level
            deep = d.boolean(True)
            for _ in range(ied.params.nesting_level + 1):
                deep = d.structure([deep])
            with pytest.raises(RequestRejected) as err:
                await ied.request(mms.write([mms.dom("FDR1LD0", "GGIO1$DC$Ind1$d")], [deep]))
            assert err.value.reason == "confirmed-requestPDU:max-recursion-exceeded"
            # association limit -> initiate-ErrorPDU
            await client.associate(server.jid)
            with pytest.raises(ServiceFailed) as err:
                await client.associate(server.jid)
            assert err.value.error_class == "initiate"
            assert await ied.get_server_directory()  # still usable afterwards

    run(main())
