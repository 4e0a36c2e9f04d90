"""End to end through a real Prosody: an IED served from tests/iec61850/data/feeder.scd and the
asyncio Client, every service positive and negative."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from gridbind.iec61850.client import (
    AssociationAborted,
    Client,
    DataAccessFailed,
    RequestRejected,
    ServiceFailed,
)
from gridbind.iec61850.model import quality_bits
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.server import IedServer
from gridbind.iec61850.xmpp import StanzaError
from iec_testkit import run, settings

FEEDER = Path(__file__).parent / "data" / "feeder.scd"
pytestmark = pytest.mark.prosody


@contextlib.asynccontextmanager
async def served(prosody, xmpp_account, tmp_path=None, *, server_kw=None, client_kw=None):
    model = load_scl(FEEDER)
    files = None
    if tmp_path is not None:
        files = tmp_path / "files"
        (files / "COMTRADE").mkdir(parents=True)
        (files / "COMTRADE" / "fault1.cfg").write_bytes(bytes(range(256)) * 40)
        (files / "readme.txt").write_text("feeder 1")
    server = IedServer(
        model, settings(prosody, xmpp_account("ied")), files_root=files, **(server_kw or {})
    )
    client = Client(settings(prosody, xmpp_account("ops")), **(client_kw or {}))
    await asyncio.gather(server.start(), client.connect())
    try:
        yield server, client
    finally:
        await asyncio.gather(client.close(), server.close())


@pytest.mark.timeout(60)
def test_directories_and_values(prosody, xmpp_account) -> None:
    async def main():
        async with served(prosody, xmpp_account) as (server, client):
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
            assert td == (
                "structure",
                [("mag", ("structure", [("f", ("floating-point", 32))])),
                 ("q", ("bit-string", 13)), ("t", ("utc-time",))],
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

    run(main())


@pytest.mark.timeout(60)
def test_set_data_values_policy_hooks_types(prosody, xmpp_account) -> None:
    async def main():
        async with served(prosody, xmpp_account) as (server, client):
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
            results = await ied.request(
                "write",
                (("listOfVariable", [("domain-specific", "FDR1LD0", "GGIO1$DC$Ind1$d")]),
                 [("integer", 5)]),
            )  # fmt: skip
            assert results == ["type-inconsistent"]
            with pytest.raises(TypeError):
                await ied.set_data_values("FDR1LD0/GGIO1.Ind1.d", "DC", 5)

    run(main())


@pytest.mark.timeout(60)
def test_data_sets(prosody, xmpp_account) -> None:
    async def main():
        async with served(prosody, xmpp_account) as (server, client):
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


@pytest.mark.timeout(60)
def test_setting_groups_and_control_blocks(prosody, xmpp_account) -> None:
    async def main():
        async with served(prosody, xmpp_account) as (server, client):
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


@pytest.mark.timeout(60)
def test_files(prosody, xmpp_account, tmp_path) -> None:
    async def main():
        async with served(prosody, xmpp_account, tmp_path, server_kw={"max_pdu_size": 2048}) as (
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
                await ied.request("obtainFile", (["not-offered"], ["x.bin"]))
            assert err.value.error_class == "file"
            assert await ied.get_server_directory("FILE") == [
                "COMTRADE/fault1.cfg",
                "upload/new.bin",
            ]

    run(main())


@pytest.mark.timeout(60)
def test_set_file_offers_are_scoped_to_their_association(prosody, xmpp_account, tmp_path) -> None:
    from gridbind.iec61850 import pdu
    from gridbind.iec61850.services.acsi import ServiceError

    async def main():
        async with served(prosody, xmpp_account, tmp_path) as (server, client):
            (tmp_path / "files2").mkdir()
            other = IedServer(
                load_scl(FEEDER),
                settings(prosody, xmpp_account("ied2")),
                files_root=tmp_path / "files2",
            )
            await other.start()
            try:
                me = client.xmpp.full_jid
                ied, second, ied2 = await asyncio.gather(
                    client.associate(server.jid),
                    client.associate(server.jid),
                    client.associate(other.jid),
                )
                source = ied._offer(b"for the first association only")
                first_side = server.core.get(me, ied.id)
                # the association the offer was made in reads it (fileOpen/Read/Close via Prosody)
                data = await server._pull_file(first_side, [source], 1 << 20)
                assert data == b"for the first association only"
                # a second association with the same server: file-non-existent
                with pytest.raises(ServiceError, match="file-non-existent"):
                    await server._pull_file(server.core.get(me, second.id), [source], 1 << 20)
                # another associated server: file-non-existent
                with pytest.raises(ServiceError, match="file-non-existent"):
                    await other._pull_file(other.core.get(me, ied2.id), [source], 1 << 20)
                # another server naming the first association's id: not its association
                open_req = pdu.encode(("confirmed-RequestPDU", 1, "fileOpen", ([source], 0)))
                with pytest.raises(StanzaError) as err:
                    await other.xmpp.request(me, "set", open_req, association=ied.id)
                assert err.value.condition == "item-not-found"
                # outside any association: not-authorized
                with pytest.raises(StanzaError) as err:
                    await other.xmpp.request(me, "set", open_req)
                assert err.value.condition == "not-authorized"
                # the client gates a server's requests strictly too: a file name segment longer
                # than the schema allows is a bad-request, however valid the association
                too_long = pdu.encode(("confirmed-RequestPDU", 3, "fileOpen", (["x" * 300], 0)))
                with pytest.raises(StanzaError) as err:
                    await server.xmpp.request(me, "set", too_long, association=ied.id)
                assert err.value.condition == "bad-request"
                # open file handles are per association too
                answer = await server.xmpp.request(me, "set", open_req, association=ied.id)
                _, _, _, (frsm, size, _) = pdu.decode(answer)
                assert size == len(data)
                read = pdu.encode(("confirmed-RequestPDU", 2, "fileRead", frsm))
                answer = await server.xmpp.request(me, "get", read, association=second.id)
                assert pdu.decode(answer)[0] == "confirmed-ErrorPDU"
                answer = await server.xmpp.request(me, "get", read, association=ied.id)
                assert pdu.decode(answer)[3] == (data, False)
                # SetFile still works in every association, each with its own offer
                await second.set_file("second.bin", b"2")
                await ied2.set_file("other.bin", b"3")
                assert (tmp_path / "files" / "second.bin").read_bytes() == b"2"
                assert (tmp_path / "files2" / "other.bin").read_bytes() == b"3"
                assert not second._offered and not ied2._offered
            finally:
                await other.close()

    run(main())


@pytest.mark.timeout(60)
def test_paging_with_small_pdu_and_two_clients(prosody, xmpp_account) -> None:
    async def main():
        async with served(prosody, xmpp_account, client_kw={"max_pdu_size": 1024}) as (
            server,
            client,
        ):
            other = Client(settings(prosody, xmpp_account("second")))
            await other.connect()
            try:
                small, big = await asyncio.gather(
                    client.associate(server.jid), other.associate(server.jid)
                )
                assert small.params.max_pdu_size == 1024
                sent = []
                original = small.request

                async def counting(service, args, **kw):
                    sent.append(service)
                    return await original(service, args, **kw)

                small.request = counting
                names_small = await small._names("namedVariable", "domainSpecific", "FDR1LD0")
                assert len(sent) > 3  # moreFollows/continueAfter paging
                with pytest.raises(ServiceFailed) as err:  # too big for 1024 octets
                    await small.get_all_data_values("FDR1LD0/LLN0")
                assert (err.value.error_class, err.value.code) == ("service", "pdu-size")
                assert (await big.get_all_data_values("FDR1LD0/LLN0"))["ST"]["Mod"]["stVal"] == 1
                names_big = await big._names("namedVariable", "domainSpecific", "FDR1LD0")
                assert names_small == names_big and len(names_big) == 179
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


@pytest.mark.timeout(60)
def test_association_errors(prosody, xmpp_account) -> None:
    async def main():
        async with served(
            prosody, xmpp_account, server_kw={"max_pdu_size": 1024, "max_associations": 2}
        ) as (server, client):
            ied = await client.associate(server.jid)
            # oversized PDU -> rejectPDU (invalid-pdu)
            with pytest.raises(RequestRejected) as err:
                await ied.create_data_set("@big", [("FDR1LD0/GGIO1.Ind1.stVal", "ST")] * 40)
            assert err.value.reason == "pdu-error:invalid-pdu"
            # unsupported service: the client refuses locally, the server rejects when forced
            with pytest.raises(RequestRejected):
                await ied.request("obtainFile", (["a"], ["b"]))
            ied.assoc.peer_services = ied.assoc.peer_services | {"obtainFile"}
            with pytest.raises(RequestRejected) as err:
                await ied.request("obtainFile", (["a"], ["b"]))
            assert err.value.reason == "confirmed-requestPDU:unrecognized-service"
            # unknown association id / outside an association -> stanza errors
            from gridbind.iec61850 import pdu

            payload = pdu.encode(
                ("confirmed-RequestPDU", 1, "getNameList", ("domain", "vmdSpecific", None, None))
            )
            with pytest.raises(StanzaError) as err:
                await client.xmpp.request(server.jid, "get", payload, association="999")
            assert err.value.condition == "item-not-found"
            payload = pdu.encode(
                ("confirmed-RequestPDU", 1, "getNameList", ("domain", "vmdSpecific", None, None))
            )
            with pytest.raises(StanzaError) as err:
                await client.xmpp.request(server.jid, "get", payload)
            assert err.value.condition == "not-authorized"
            # wrong iq type for the service (Table D.1)
            payload = pdu.encode(
                ("confirmed-RequestPDU", 2, "getNameList", ("domain", "vmdSpecific", None, None))
            )
            with pytest.raises(StanzaError) as err:
                await client.xmpp.request(server.jid, "set", payload, association=ied.id)
            assert err.value.condition == "bad-request"
            # a reference longer than an Identifier allows: the codec gate refuses it
            long_name = ("domain-specific", "FDR1LD0", "GGIO1$ST$" + "A" * 70)
            with pytest.raises(RequestRejected) as err:
                await ied.request("read", ("listOfVariable", [long_name]))
            assert err.value.reason == "pdu-error:invalid-pdu"
            # Data nested deeper than the negotiated nesting level
            deep = ("boolean", True)
            for _ in range(ied.params.nesting_level + 1):
                deep = ("structure", [deep])
            with pytest.raises(RequestRejected) as err:
                await ied.request(
                    "write",
                    (
                        ("listOfVariable", [("domain-specific", "FDR1LD0", "GGIO1$DC$Ind1$d")]),
                        [deep],
                    ),
                )
            assert err.value.reason == "confirmed-requestPDU:max-recursion-exceeded"
            # association limit -> initiate-ErrorPDU
            await client.associate(server.jid)
            with pytest.raises(ServiceFailed) as err:
                await client.associate(server.jid)
            assert err.value.error_class == "initiate"
            assert await ied.get_server_directory()  # still usable afterwards

    run(main())


@pytest.mark.timeout(60)
def test_presence_loss_aborts_and_resumption_keeps(prosody, xmpp_account) -> None:
    async def main():
        async with served(prosody, xmpp_account) as (server, client):
            events = []
            server.on_event = events.append
            ied = await client.associate(server.jid)
            # XEP-0198: the client's link drops and resumes: the association survives
            resumed = asyncio.Event()
            client.xmpp._on_resumed = resumed.set
            client.xmpp.drop_link()
            await asyncio.wait_for(resumed.wait(), 10)
            assert await ied.get_data_values("FDR1LD0/GGIO1.IntIn1.stVal", "ST") == 42
            assert len(server.core.associations) == 1
            # a second client without stream management vanishes: its association aborts
            other = Client(settings(prosody, xmpp_account("vanish"), stream_management=False))
            await other.connect()
            gone = await other.associate(server.jid)
            assert len(server.core.associations) == 2
            other.xmpp.drop_link()
            for _ in range(100):
                if len(server.core.associations) == 1:
                    break
                await asyncio.sleep(0.05)
            assert len(server.core.associations) == 1
            aborted = [e for e in events if getattr(e, "how", "") == "aborted"]
            assert aborted and aborted[0].association.id == gone.id
            assert not gone.open  # the client lost its link too: its side aborted as well
            with pytest.raises(AssociationAborted):
                await gone.get_server_directory()
            await other.close()
            assert await ied.get_server_directory()

    run(main())


@pytest.mark.timeout(60)
def test_server_link_loss_aborts_everything_and_clients_fail_fast(prosody, xmpp_account) -> None:
    async def main():
        # a server without stream management whose link drops: all associations abort there,
        # and the client's waiting request fails as soon as the server's presence goes away
        model = load_scl(FEEDER)
        server = IedServer(
            model, settings(prosody, xmpp_account("fragile"), stream_management=False)
        )
        client = Client(settings(prosody, xmpp_account("waiter")))
        await asyncio.gather(server.start(), client.connect())
        try:
            a1 = await client.associate(server.jid)
            await client.associate(server.jid)
            assert len(server.core.associations) == 2
            # cut the server's link while a read is outstanding
            original = server.services.read

            def slow_read(assoc, spec):
                server.xmpp.drop_link()
                return original(assoc, spec)

            server.services.read = slow_read
            t0 = asyncio.get_running_loop().time()
            with pytest.raises(AssociationAborted):
                await a1.get_data_values("FDR1LD0/GGIO1.Ind1.stVal", "ST")
            assert asyncio.get_running_loop().time() - t0 < 5  # not the 8 s request timeout
            assert server.core.associations == {}
            assert client.associations == []
        finally:
            await asyncio.gather(client.close(), server.close())

    run(main())


@pytest.mark.timeout(60)
def test_resumption_window_expiry_aborts_but_the_ied_comes_back(prosody, xmpp_account) -> None:
    async def main():
        server = IedServer(
            load_scl(FEEDER), settings(prosody, xmpp_account("comeback"), resume_window=0.0)
        )
        client = Client(settings(prosody, xmpp_account("patient")))
        await asyncio.gather(server.start(), client.connect())
        try:
            old = await client.associate(server.jid)
            server.xmpp.drop_link()
            for _ in range(200):
                if not server.core.associations and server.xmpp.connected:
                    break
                await asyncio.sleep(0.02)
            assert server.core.associations == {}  # window expired: link declared lost
            assert server.xmpp.connected  # ... and the IED is reachable again
            with pytest.raises(StanzaError) as err:
                await old.get_server_directory()
            assert err.value.condition == "item-not-found"
            fresh = await client.associate(server.jid)
            assert await fresh.get_data_values("FDR1LD0/GGIO1.IntIn1.stVal", "ST") == 42
        finally:
            await asyncio.gather(client.close(), server.close())

    run(main())
