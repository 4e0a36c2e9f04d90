"""Negative answers of every ACSI service, client and server on the in-memory transport: wrong FC, FC XX, unknown
objects, too-long references, type mismatches, access denied (write and read hooks), setting
group sequencing, control block attributes and file names.

The codes are the MMS ones of the 8-1/8-2 mapping (notes sections 4-6): a name that is not in
the MMS view (unknown object, an FC the object does not have, FC XX, which is never mapped) is
``object-non-existent`` (ServiceError class ``access`` for services answering with a
ServiceError, a DataAccessError for per-item reads and writes); a data set member that does not
resolve is ``definition/object-undefined``; a name longer than an Identifier never reaches the
server's model (the strict codec rejects the PDU).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from gridbind.iec61850 import codec, mms
from gridbind.iec61850 import mmsdata as d
from gridbind.iec61850.client import DataAccessFailed, ServiceFailed
from gridbind.iec61850.model import DataAccessError
from gridbind.iec61850.services.mmsview import td_kind
from gridbind.iec61850.stanza import StanzaError

from iec_testkit import memory_served, results, send_unchecked

DATA = Path(__file__).parent / "data"
FEEDER = DATA / "feeder.scd"
BAY2 = DATA / "bay2.cid"
dom = mms.dom


@contextlib.asynccontextmanager
async def served(*, scl=FEEDER, files=None, clients=1):
    async with memory_served(scl, files=files, clients=clients) as (server, apps, _):
        yield server, apps


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def write(ied, target, datas) -> list:
    return mms.write_results(await ied.request(mms.write(target, datas)))


async def delete(ied, names, scope="specific") -> tuple[int, int]:
    response = await ied.request(mms.delete_named_variable_list(names, scope))
    return response.number_matched, response.number_deleted


async def service_error(call) -> tuple[str, str]:
    with pytest.raises(ServiceFailed) as err:
        await call
    return err.value.error_class, err.value.code


async def access_error(call) -> str:
    with pytest.raises(DataAccessFailed) as err:
        await call
    return err.value.code


NON_EXISTENT = ("access", "object-non-existent")


@pytest.mark.timeout(30)
def test_definition_directory_and_name_lists() -> None:
    async def main():
        async with served() as (server, (client,)):
            ied = await client.associate(server.jid)
            # GetDataDefinition: wrong FC, FC XX, unknown DO / LN / LD, an FC the LN lacks
            for ref, fc in (
                ("FDR1LD0/GGIO1.Ind1", "MX"),
                ("FDR1LD0/GGIO1.Ind1.stVal", "CF"),
                ("FDR1LD0/GGIO1.Ind1", "XX"),
                ("FDR1LD0/GGIO1", "XX"),
                ("FDR1LD0/GGIO1.Nope", "ST"),
                ("FDR1LD0/GGIO1.Ind1.nope", "ST"),
                ("FDR1LD0/GGIO9.Ind1", "ST"),
                ("NOPE/GGIO1.Ind1", "ST"),
                ("FDR1LD0/GGIO1", "SG"),
            ):
                assert await service_error(ied.get_data_definition(ref, fc)) == NON_EXISTENT
                # GetDataDirectory of one FC is the same getVariableAccessAttributes
                assert await service_error(ied.get_data_directory(ref, fc)) == NON_EXISTENT
            # GetDataDirectory over every FC walks the name list: unknown DO, LN, LD
            for ref in ("FDR1LD0/GGIO1.Nope", "FDR1LD0/GGIO9.Ind1", "NOPE/GGIO1.Ind1"):
                assert await service_error(ied.get_data_directory(ref)) == NON_EXISTENT
            # FC XX reaches the server unchanged (the client leaves the FC to it)
            for item in ("GGIO1$XX", "GGIO1$XX$Ind1", "GGIO1$XX$Ind1$stVal"):
                with pytest.raises(ServiceFailed) as err:
                    await ied.request(mms.get_variable_access_attributes(dom("FDR1LD0", item)))
                assert (err.value.error_class, err.value.code) == NON_EXISTENT
            # a malformed item (empty component) is an invalid address, not a missing object
            with pytest.raises(ServiceFailed) as err:
                await ied.request(mms.get_variable_access_attributes(dom("FDR1LD0", "GGIO1$$Ind1")))
            assert (err.value.error_class, err.value.code) == ("definition", "invalid-address")
            # too-long references: refused by the client's reference parser ...
            long_do = "FDR1LD0/GGIO1." + "A" * 130
            with pytest.raises(ValueError):
                await ied.get_data_definition(long_do, "ST")
            with pytest.raises(ValueError):
                await ied.get_data_directory(long_do, "ST")
            with pytest.raises(ValueError):  # itemId over 64 characters
                await ied.get_data_definition("FDR1LD0/GGIO1." + "B" * 60, "ST")
            # ... by the client's encoder (as strict as the server) and, sent anyway, by the
            # server's strict codec gate (Identifier <= 64)
            for name in (
                dom("FDR1LD0", "GGIO1$ST$" + "A" * 70),
                dom("D" * 65, "GGIO1$ST$Ind1"),
            ):
                with pytest.raises(codec.EncodeError, match="maxLength"):
                    await ied.request(mms.get_variable_access_attributes(name))
                with pytest.raises(StanzaError) as err:
                    await send_unchecked(ied, mms.get_variable_access_attributes(name))
                assert err.value.condition == "bad-request"
                assert err.value.text.startswith("pdu-error:invalid-pdu")
            # exactly 64 characters is a legal name, just not an existing one
            with pytest.raises(ServiceFailed) as err:
                await ied.request(
                    mms.get_variable_access_attributes(dom("FDR1LD0", "GGIO1$ST$" + "C" * 55))
                )
            assert (err.value.error_class, err.value.code) == NON_EXISTENT
            td = await ied.get_data_definition("FDR1LD0/GGIO1.Ind1.stVal", "ST")
            assert td_kind(td) == "boolean"  # still usable
            # GetLogicalDeviceDirectory / GetLogicalNodeDirectory: unknown LD and LN
            assert await service_error(ied.get_logical_device_directory("NOPE")) == NON_EXISTENT
            for acsi_class in ("DATA", "DATA-SET", "URCB", "BRCB", "LCB", "GoCB", "MSVCB", "SGCB"):
                for ln_ref in ("FDR1LD0/GGIO9", "NOPE/LLN0", "FDR1LD0/"):
                    code = await service_error(ied.get_logical_node_directory(ln_ref, acsi_class))
                    assert code == NON_EXISTENT, (ln_ref, acsi_class)
            for object_class in ("namedVariable", "namedVariableList"):
                with pytest.raises(ServiceFailed) as err:
                    await ied.request(mms.get_name_list(object_class, "domainSpecific", "NOPE"))
                assert (err.value.error_class, err.value.code) == NON_EXISTENT
            # an existing LN without control blocks of a class: empty, not an error
            assert await ied.get_logical_node_directory("FDR1LD0/GGIO1", "GoCB") == []

    run(main())


@pytest.mark.timeout(30)
def test_data_set_services() -> None:
    async def main():
        async with served() as (server, (client,)):
            ied = await client.associate(server.jid)
            members = [
                ("FDR1LD0/GGIO1.Ind1.d", "DC"),  # VisString255, writable
                ("FDR1LD0/GGIO1.SPCSO1.ctlModel", "CF"),  # Enum, writable
                ("FDR1LD0/GGIO1.Ind1.stVal", "ST"),  # BOOLEAN, server-owned
                ("FDR1MEAS/MMXU1.TotW.units", "CF"),  # structure
            ]
            await ied.create_data_set("FDR1LD0/GGIO1.Mixed", members)
            target = dom("FDR1LD0", "GGIO1$Mixed")
            # SetDataSetValues: one result per member, type mismatches member by member
            codes = await write(
                ied,
                target,
                [
                    d.integer(5),  # not a visible-string
                    d.integer(1),  # fine
                    d.boolean(False),  # right type, FC ST is not writable
                    d.structure([d.integer(1)]),  # too few components
                ],
            )
            assert codes == [
                DataAccessError.TYPE_INCONSISTENT,
                None,
                DataAccessError.OBJECT_ACCESS_DENIED,
                DataAccessError.TYPE_INCONSISTENT,
            ]
            assert server.model.read("FDR1LD0/GGIO1.SPCSO1.ctlModel", "CF") == 1
            assert server.model.read("FDR1LD0/GGIO1.Ind1.d", "DC") == ""
            codes = await write(
                ied,
                target,
                [
                    d.visible_string("ok"),
                    d.integer(42),  # not an ordinal of CtlModelKind
                    d.integer(1),  # not a boolean
                    # SIUnit Hz is fine, multiplier 77 is no MultiplierKind
                    d.structure([d.integer(33), d.integer(77)]),
                ],
            )
            assert codes == [
                None,
                DataAccessError.OBJECT_VALUE_INVALID,
                DataAccessError.TYPE_INCONSISTENT,
                DataAccessError.OBJECT_VALUE_INVALID,
            ]
            assert server.model.read("FDR1LD0/GGIO1.Ind1.d", "DC") == "ok"
            # a refused structure is not half written
            units = "FDR1MEAS/MMXU1.TotW.units"
            assert server.model.read(units, "CF") == {"SIUnit": 38, "multiplier": 0}
            codes = await write(
                ied,
                target,
                [
                    d.visible_string("ok"),
                    d.integer(1),
                    d.boolean(True),
                    d.structure([d.integer(33), d.integer(3)]),
                ],
            )
            assert codes == [None, None, DataAccessError.OBJECT_ACCESS_DENIED, None]
            assert server.model.read(units, "CF") == {"SIUnit": 33, "multiplier": 3}
            # a value list of the wrong length is no per-member answer: the whole write fails
            with pytest.raises(ServiceFailed) as err:
                await ied.request(mms.write(target, [d.visible_string("x")]))
            assert (err.value.error_class, err.value.code) == ("definition", "type-inconsistent")
            with pytest.raises(ValueError):  # the client checks the count first
                await ied.set_data_set_values("FDR1LD0/GGIO1.Mixed", ["x"])
            with pytest.raises(TypeError):  # ... and the Python types
                await ied.set_data_set_values("FDR1LD0/GGIO1.Mixed", [1, 1, True, {}])
            # unknown data sets: persistent (existing LN, unknown LN, unknown LD) and aa-specific
            for ds in ("FDR1LD0/LLN0.Nope", "FDR1LD0/GGIO9.Mixed", "NOPE/LLN0.Status", "@nope"):
                assert await service_error(ied.get_data_set_values(ds)) == NON_EXISTENT
                assert await service_error(ied.get_data_set_directory(ds)) == NON_EXISTENT
                assert await service_error(ied.set_data_set_values(ds, [])) == NON_EXISTENT
            for name in (dom("FDR1LD0", "LLN0$Nope"), dom("FDR1LD0", "Status")):
                for call in (
                    ied.request(mms.read_list(name)),
                    ied.request(mms.get_named_variable_list_attributes(name)),
                    ied.request(mms.write(name, [d.boolean(True)])),
                ):
                    assert await service_error(call) == NON_EXISTENT
            # CreateDataSet: unknown member, member with FC XX, wrong FC, whole LN, bad names
            for bad in (
                [("FDR1LD0/GGIO1.Nope", "ST")],
                [("FDR1LD0/GGIO9.Ind1", "ST")],
                [("NOPE/GGIO1.Ind1", "ST")],
                [("FDR1LD0/GGIO1.Ind1", "XX")],
                [("FDR1LD0/GGIO1.Ind1.stVal", "XX")],
                [("FDR1LD0/GGIO1.Ind1", "MX")],
                [("FDR1LD0/GGIO1.Ind1.stVal", "ST"), ("FDR1LD0/GGIO1.Ind1.nope", "ST")],
            ):
                code = await service_error(ied.create_data_set("FDR1LD0/GGIO1.Bad", bad))
                assert code == ("definition", "object-undefined"), bad
                code = await service_error(ied.create_data_set("@bad", bad))
                assert code == ("definition", "object-undefined"), bad
            for whole in (dom("FDR1LD0", "GGIO1"), dom("FDR1LD0", "GGIO1$ST")):
                with pytest.raises(ServiceFailed) as err:
                    await ied.request(
                        mms.define_named_variable_list(dom("FDR1LD0", "GGIO1$Bad"), [whole])
                    )
                assert (err.value.error_class, err.value.code) == ("definition", "object-undefined")
            assert await ied.get_logical_node_directory("FDR1LD0/GGIO1", "DATA-SET") == ["Mixed"]
            # duplicate names: an SCL data set, a client-made one, a data object's name, aa
            one = [("FDR1LD0/GGIO1.Ind2", "ST")]
            for ds in ("FDR1LD0/LLN0.Status", "FDR1LD0/GGIO1.Mixed", "FDR1LD0/GGIO1.Ind1"):
                code = await service_error(ied.create_data_set(ds, one))
                assert code == ("definition", "object-exists"), ds
            await ied.create_data_set("@mine", one)
            assert await service_error(ied.create_data_set("@mine", one)) == (
                "definition",
                "object-exists",
            )
            for ds in ("FDR1LD0/GGIO1.1bad", "FDR1LD0/GGIO1._bad", "FDR1LD0/GGIO1." + "L" * 40):
                code = await service_error(ied.create_data_set(ds, one))
                assert code == ("definition", "invalid-address")
            assert await service_error(ied.create_data_set("FDR1LD0/GGIO9.X", one)) == NON_EXISTENT
            assert await service_error(ied.create_data_set("FDR1LD0/GGIO1.Empty", [])) == (
                "definition",
                "object-attribute-inconsistent",
            )
            # DeleteDataSet of an unknown one: nothing matched
            assert await delete(ied, [dom("FDR1LD0", "LLN0$Nope")]) == (0, 0)
            for ds in ("FDR1LD0/LLN0.Nope", "@nope", "NOPE/LLN0.Status"):
                assert await service_error(ied.delete_data_set(ds)) == NON_EXISTENT
            # ... of an SCL-defined one: matched, not deleted, still there
            assert await delete(ied, [dom("FDR1LD0", "LLN0$Status")]) == (1, 0)
            assert await service_error(ied.delete_data_set("FDR1LD0/LLN0.Status")) == (
                "access",
                "object-access-denied",
            )
            assert len(await ied.get_data_set_directory("FDR1LD0/LLN0.Status")) == 4
            # a mixed request deletes what it may and counts the rest
            assert await delete(
                ied,
                [dom("FDR1LD0", "GGIO1$Mixed"), dom("FDR1LD0", "LLN0$Status"),
                 dom("FDR1LD0", "LLN0$Nope"), mms.aa("mine")],
            ) == (3, 2)  # fmt: skip
            assert await ied.get_logical_node_directory("FDR1LD0/GGIO1", "DATA-SET") == []
            with pytest.raises(ServiceFailed) as err:  # only specific deletes exist
                await ied.request(mms.delete_named_variable_list([], "domain", "FDR1LD0"))
            assert err.value.error_class == "service"

    run(main())


@pytest.mark.timeout(30)
def test_scl_data_set_not_deletable_even_unreferenced() -> None:
    async def main():
        async with served(scl=BAY2) as (server, (client,)):
            ied = await client.associate(server.jid)
            assert not server.model.dataset_users(server.model.dataset("BAY2CTRL/LLN0.Spare"))
            assert await service_error(ied.delete_data_set("BAY2CTRL/LLN0.Spare")) == (
                "access",
                "object-access-denied",
            )
            assert await ied.get_data_set_values("BAY2CTRL/LLN0.Spare") == ["01", 115.0]
            # a client-made set in the same LN, unreferenced, is deletable
            await ied.create_data_set("BAY2CTRL/LLN0.Own", [("BAY2CTRL/Q0XSWI1.Pos", "ST")])
            await ied.delete_data_set("BAY2CTRL/LLN0.Own")
            assert await ied.get_logical_node_directory("BAY2CTRL/LLN0", "DATA-SET") == [
                "Spare",
                "Trip",
            ]

    run(main())


@pytest.mark.timeout(30)
def test_setting_group_sequencing() -> None:
    async def main():
        async with served() as (server, (client,)):
            ied = await client.associate(server.jid)
            ref = "FDR1PROT/IPTOC1.StrVal.setMag.f"
            # SelectActiveSG / SelectEditSG out of range (NumOfSG is 3)
            for group in (0, 4, 255):
                code = await access_error(ied.select_active_sg("FDR1PROT", group))
                assert code == DataAccessError.OBJECT_VALUE_INVALID
            for group in (4, 255):
                code = await access_error(ied.select_edit_sg("FDR1PROT", group))
                assert code == DataAccessError.OBJECT_VALUE_INVALID
            assert (await ied.get_sgcb_values("FDR1PROT"))["ActSG"] == 1
            # SetEditSGValue / ConfirmEditSGValues without SelectEditSG
            code = await access_error(ied.set_edit_sg_value(ref, 1.0))
            assert code == DataAccessError.TEMPORARILY_UNAVAILABLE
            code = await access_error(ied.confirm_edit_sg_values("FDR1PROT"))
            assert code == DataAccessError.TEMPORARILY_UNAVAILABLE
            code = await access_error(
                ied.set_data_values("FDR1PROT/LLN0.SGCB.CnfEdit", "SP", False)
            )
            assert code == DataAccessError.OBJECT_VALUE_INVALID
            # GetEditSGValue of a reference that has no SE: nothing of it is in FC SE
            for non_se in ("FDR1LD0/GGIO1.Ind1.stVal", "FDR1PROT/IPTOC1.Beh.stVal"):
                assert await service_error(ied.get_edit_sg_value(non_se)) == NON_EXISTENT
                response = await ied.request(
                    mms.read(dom(non_se.split("/")[0], _item(non_se, "SE")))
                )
                assert results(response) == [("failure", DataAccessError.OBJECT_NON_EXISTENT)]
            # SG is read-only, SGCB attributes other than the three service ones too
            assert await access_error(ied.set_data_values(ref, "SG", 1.0)) == (
                DataAccessError.OBJECT_ACCESS_DENIED
            )
            for attr, value in (("NumOfSG", 2), ("LActTm", 0.0)):
                code = await access_error(
                    ied.set_data_values(f"FDR1PROT/LLN0.SGCB.{attr}", "SP", value)
                )
                assert code == DataAccessError.OBJECT_ACCESS_DENIED
            # no SGCB in that LD
            assert await service_error(ied.select_active_sg("FDR1LD0", 1)) == NON_EXISTENT
            assert await service_error(ied.get_sgcb_values("FDR1MEAS")) == NON_EXISTENT
            # GetEditSGValue sees the edit buffer before ConfirmEditSGValues; a new SelectEditSG
            # drops it; SelectEditSG 0 ends editing
            await ied.select_edit_sg("FDR1PROT", 2)
            assert await ied.get_edit_sg_value(ref) == 200.0
            await ied.set_edit_sg_value(ref, 222.0)
            assert await ied.get_edit_sg_value(ref) == 222.0
            assert await ied.get_data_values(ref, "SG") == 100.0  # active group 1 unchanged
            await ied.select_edit_sg("FDR1PROT", 2)
            assert await ied.get_edit_sg_value(ref) == 200.0
            await ied.select_edit_sg("FDR1PROT", 0)
            code = await access_error(ied.set_edit_sg_value(ref, 1.0))
            assert code == DataAccessError.TEMPORARILY_UNAVAILABLE
            code = await access_error(ied.confirm_edit_sg_values("FDR1PROT"))
            assert code == DataAccessError.TEMPORARILY_UNAVAILABLE
            # the application's write hooks see (and may veto) the setting group services
            seen = []

            def hook(model, attr, fc, value, originator):
                seen.append((attr.name, fc, value))
                return "object-access-denied" if attr.name == "ActSG" and value == 3 else None

            server.model.add_write_hook(hook)
            code = await access_error(ied.select_active_sg("FDR1PROT", 3))
            assert code == DataAccessError.OBJECT_ACCESS_DENIED
            assert (await ied.get_sgcb_values("FDR1PROT"))["ActSG"] == 1
            await ied.select_active_sg("FDR1PROT", 2)
            await ied.select_edit_sg("FDR1PROT", 3)
            await ied.set_edit_sg_value(ref, 333.0)
            await ied.confirm_edit_sg_values("FDR1PROT")
            assert seen == [
                ("ActSG", "SP", 3),
                ("ActSG", "SP", 2),
                ("EditSG", "SP", 3),
                ("f", "SE", 333.0),
                ("CnfEdit", "SP", True),
            ]
            assert server.model.read(ref, "SE") == 333.0

    run(main())


def _item(ref: str, fc: str) -> str:
    ln, _, path = ref.split("/", 1)[1].partition(".")
    return "$".join([ln, fc, *path.split(".")])


@pytest.mark.timeout(30)
def test_gocb_and_msvcb() -> None:
    async def main():
        async with served() as (server, (client,)):
            ied = await client.associate(server.jid)
            # unknown control blocks, a control block of the other kind, an LN without any
            for call in (
                ied.get_gocb_values("FDR1LD0/LLN0.gcbNope"),
                ied.get_gocb_values("FDR1LD0/LLN0.msvcbMeas"),
                ied.get_gocb_values("FDR1LD0/GGIO1.gcbStatus"),
                ied.get_gocb_values("NOPE/LLN0.gcbStatus"),
                ied.get_msvcb_values("FDR1LD0/LLN0.msvNope"),
                ied.get_msvcb_values("FDR1LD0/LLN0.gcbStatus"),
                ied.set_gocb_values("FDR1LD0/LLN0.gcbNope", GoEna=True),
                ied.set_msvcb_values("FDR1LD0/LLN0.msvNope", SvEna=True),
                ied.set_gocb_values("FDR1LD0/LLN0.gcbStatus", Nope=True),
            ):
                assert await service_error(call) == NON_EXISTENT
            for item, data in (
                ("LLN0$GO$gcbNope$GoEna", d.boolean(True)),
                ("LLN0$MS$msvNope$SvEna", d.boolean(True)),
                ("LLN0$MS$gcbStatus$GoEna", d.boolean(True)),
            ):
                codes = await write(ied, [dom("FDR1LD0", item)], [data])
                assert codes == [DataAccessError.OBJECT_NON_EXISTENT]
            response = await ied.request(mms.read(dom("FDR1LD0", "LLN0$GO$gcbNope")))
            assert results(response) == [("failure", DataAccessError.OBJECT_NON_EXISTENT)]
            # read-only attributes: access denied, whether enabled or not
            for gocb_attr, value in (("ConfRev", 9), ("NdsCom", True), ("FixedOffs", True)):
                code = await access_error(
                    ied.set_gocb_values("FDR1LD0/LLN0.gcbStatus", **{gocb_attr: value})
                )
                assert code == DataAccessError.OBJECT_ACCESS_DENIED, gocb_attr
            code = await access_error(
                ied.set_data_values("FDR1LD0/LLN0.gcbStatus.DstAddress.VID", "GO", 5)
            )
            assert code == DataAccessError.OBJECT_ACCESS_DENIED
            for msv_attr, value in (("ConfRev", 9), ("noASDU", 2), ("SmpMod", 1)):
                code = await access_error(
                    ied.set_msvcb_values("FDR1LD0/LLN0.msvcbMeas", **{msv_attr: value})
                )
                assert code == DataAccessError.OBJECT_ACCESS_DENIED, msv_attr
            # type mismatch on a control block attribute
            codes = await write(ied, [dom("FDR1LD0", "LLN0$GO$gcbStatus$GoID")], [d.integer(7)])
            assert codes == [DataAccessError.TYPE_INCONSISTENT]
            # DatSet must name a persistent data set: the value is invalid, not the attribute
            await ied.create_data_set("@temp", [("FDR1LD0/GGIO1.Ind2", "ST")])
            for value in ("FDR1LD0/LLN0.Nope", "NOPE/LLN0.Status", "@temp", "garbage"):
                code = await access_error(
                    ied.set_msvcb_values("FDR1LD0/LLN0.msvcbMeas", DatSet=value)
                )
                assert code == DataAccessError.OBJECT_VALUE_INVALID, value
                code = await access_error(
                    ied.set_gocb_values("FDR1LD0/LLN0.gcbStatus", DatSet=value)
                )
                assert code == DataAccessError.OBJECT_VALUE_INVALID, value
            assert (await ied.get_gocb_values("FDR1LD0/LLN0.gcbStatus"))["DatSet"] == (
                "FDR1LD0/LLN0.Status"
            )
            # while enabled, the configuration attributes wait
            await ied.set_msvcb_values("FDR1LD0/LLN0.msvcbMeas", SvEna=True)
            code = await access_error(ied.set_msvcb_values("FDR1LD0/LLN0.msvcbMeas", SmpRate=4))
            assert code == DataAccessError.TEMPORARILY_UNAVAILABLE
            assert server.model.read("FDR1LD0/LLN0.msvcbMeas.SmpRate", "MS") == 80

    run(main())


@pytest.mark.timeout(30)
def test_delete_file_names(tmp_path) -> None:
    root = tmp_path / "files"
    (root / "sub").mkdir(parents=True)
    (root / "keep.txt").write_text("keep")
    (root / "sub" / "open.txt").write_text("busy")
    outside = tmp_path / "outside.txt"
    outside.write_text("must survive")
    (root / "escape.txt").symlink_to(outside)
    (root / "away").symlink_to(tmp_path, target_is_directory=True)

    async def main():
        async with served(files=root) as (server, (client,)):
            ied = await client.associate(server.jid)
            for name in ("../outside.txt", "sub/../../outside.txt", "./keep.txt", "sub/./x"):
                code = await service_error(ied.delete_file(name))
                assert code == ("file", "filename-syntax-error"), name
            # absolute paths: the client cannot even spell one as segments (an empty segment is
            # schema-invalid) ...
            with pytest.raises(Exception, match="minLength"):
                await ied.delete_file("/etc/passwd")
            # ... and a segment starting with "/" is refused by the server
            for segments in (["/etc/passwd"], ["/", "x"], ["sub\\..\\..\\outside.txt"]):
                with pytest.raises(ServiceFailed) as err:
                    await ied.request(mms.file_delete(segments))
                assert (err.value.error_class, err.value.code) == (
                    "file",
                    "filename-syntax-error",
                ), segments
            # symbolic links leading out of the store
            for name in ("escape.txt", "away/outside.txt"):
                code = await service_error(ied.delete_file(name))
                assert code == ("file", "file-access-denied"), name
            # missing files, and a folder is no file
            for name in ("missing.txt", "sub/missing.txt", "nodir/x.txt", "sub"):
                code = await service_error(ied.delete_file(name))
                assert code == ("file", "file-non-existent"), name
            # a file being read (GetFile in progress) is busy
            frsm = (await ied.request(mms.file_open(["sub", "open.txt"]))).frsm_id
            assert await service_error(ied.delete_file("sub/open.txt")) == ("file", "file-busy")
            await ied.request(mms.file_close(frsm))
            await ied.delete_file("sub/open.txt")
            assert outside.read_text() == "must survive"
            assert (root / "keep.txt").exists() and (root / "escape.txt").is_symlink()
            assert not (root / "sub" / "open.txt").exists()

    run(main())


@pytest.mark.timeout(30)
def test_read_hook_denies_reads_per_originator() -> None:
    async def main():
        async with served(clients=2) as (server, (trusted, other)):
            allowed = trusted.xmpp.full_jid.split("/")[0]
            calls = []

            def policy(model, attr, fc, originator):
                calls.append((attr.reference(), fc, originator))
                if originator.split("/")[0] == allowed:
                    return None
                if fc == "DC" or attr.reference().startswith("FDR1LD0/GGIO1.Ind2."):
                    return DataAccessError.OBJECT_ACCESS_DENIED
                if attr.reference() == "FDR1MEAS/MMXU1.TotW.limits.1":  # one array element
                    return DataAccessError.TEMPORARILY_UNAVAILABLE
                return None

            server.model.add_read_hook(policy)
            good = await trusted.associate(server.jid)
            ied = await other.associate(server.jid)
            denied = DataAccessError.OBJECT_ACCESS_DENIED
            # GetDataValues: an attribute, a data object, a structure containing one
            assert await access_error(ied.get_data_values("FDR1LD0/GGIO1.Ind1.d", "DC")) == denied
            assert await access_error(ied.get_data_values("FDR1LD0/GGIO1.Ind2", "ST")) == denied
            assert (
                await access_error(ied.get_data_values("FDR1LD0/GGIO1.Ind2.stVal", "ST")) == denied
            )
            assert await ied.get_data_values("FDR1LD0/GGIO1.Ind1.stVal", "ST") is True
            # GetAllDataValues: one refused attribute fails the whole LN (MMS has no partial
            # value), with and without an FC
            assert await access_error(ied.get_all_data_values("FDR1LD0/GGIO1")) == denied
            assert await access_error(ied.get_all_data_values("FDR1LD0/GGIO1", "ST")) == denied
            assert await access_error(ied.get_all_data_values("FDR1LD0/GGIO1", "DC")) == denied
            assert (await ied.get_all_data_values("FDR1LD0/GGIO1", "CF"))["SPCSO1"]
            # the hook's own code goes through, per array element too
            code = await access_error(ied.get_data_values("FDR1MEAS/MMXU1.TotW.limits", "CF"))
            assert code == DataAccessError.TEMPORARILY_UNAVAILABLE
            assert await ied.get_data_values("FDR1MEAS/MMXU1.TotW.limits(0)", "CF") == 0
            # GetDataSetValues: per member
            values = await ied.get_data_set_values("FDR1LD0/LLN0.Status")
            assert values[0] is True and values[3] == 1500.5
            assert isinstance(values[2], DataAccessFailed) and values[2].code == denied
            response = await ied.request(
                mms.read(dom("FDR1LD0", "GGIO1$DC$Ind1$d"), dom("FDR1LD0", "GGIO1$ST$Ind1$stVal"))
            )
            assert results(response) == [("failure", denied), ("success", True)]
            # definitions and directories are not values: not gated
            assert await ied.get_data_definition("FDR1LD0/GGIO1.Ind1.d", "DC")
            assert "Ind2" in await ied.get_logical_node_directory("FDR1LD0/GGIO1")
            # writes are not reads: the read policy does not refuse them
            await ied.set_data_values("FDR1LD0/GGIO1.Ind1.d", "DC", "written blind")
            assert server.model.read("FDR1LD0/GGIO1.Ind1.d", "DC") == "written blind"
            # the trusted originator reads everything; so does the application itself
            assert await good.get_data_values("FDR1LD0/GGIO1.Ind1.d", "DC") == "written blind"
            assert (await good.get_all_data_values("FDR1LD0/GGIO1"))["ST"]["Ind2"]["stVal"] is False
            assert await good.get_data_values("FDR1MEAS/MMXU1.TotW.limits", "CF") == [0, 0, 0]
            assert all(not isinstance(v, DataAccessFailed) for v in
                       await good.get_data_set_values("FDR1LD0/LLN0.Status"))  # fmt: skip
            assert server.model.read("FDR1LD0/GGIO1.Ind2.stVal", "ST") is False
            # the hook saw full JIDs and basic attributes only
            assert {who for _, _, who in calls} == {
                trusted.xmpp.full_jid,
                other.xmpp.full_jid,
            }
            assert ("FDR1MEAS/MMXU1.TotW.limits.1", "CF", other.xmpp.full_jid) in calls

    run(main())
