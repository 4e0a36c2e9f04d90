"""Negotiated limits, on the in-memory transport: outstanding requests, conclude while requests
are outstanding (conclude-ErrorPDU), and fileDirectory paging (moreFollows) at a small PDU
size."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850 import codec, mms
from gridbind.iec61850.client import Client, ServiceFailed
from gridbind.iec61850.stanza import StanzaError

from iec_testkit import FEEDER, memory_served, run, send_unchecked, until


@contextlib.asynccontextmanager
async def served(files: Path, *, server_kw=None, client_kw=None):
    async with memory_served(FEEDER, files=files, server_kw=server_kw, client_kw=client_kw) as (
        server,
        (client,),
        _,
    ):
        yield server, client


def _hold_file_reads(client: Client) -> tuple[asyncio.Event, list]:
    """The client sits on the server's reads of offered files (SetFile) until ``release``:
    each obtainFile then stays outstanding at the server. Messages pass at once."""
    release, held, tasks = asyncio.Event(), [], set()
    serve = client.transport.on_inbound

    def on_inbound(item):
        if item.kind != "iq":
            return serve(item)
        held.append(item)

        async def later():
            await release.wait()
            serve(item)

        task = asyncio.get_running_loop().create_task(later())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    client.transport.on_inbound = on_inbound
    return release, held


def _record(server, method: str) -> list:
    """The typed payloads the server's transport sends through ``method``."""
    sent: list = []
    original = getattr(server.transport, method)

    def recording(*args):
        sent.append(args[-1])
        return original(*args)

    setattr(server.transport, method, recording)
    return sent


def _answers(sent: list, kind: type) -> list[int]:
    """Octets of the MMSpdus of the recorded answers whose service response is ``kind``."""
    sizes = []
    for envelope in sent:
        pdu = envelope.appl_data.mmspdu if envelope is not None else None
        if pdu is not None and isinstance(pdu.choice, m.ConfirmedResponsePdu):
            if isinstance(pdu.choice.service.choice, kind):
                sizes.append(len(codec.encode(pdu)))
    return sizes


ST_VAL = "FDR1LD0/GGIO1.IntIn1.stVal"


@pytest.mark.timeout(20)
def test_outstanding_limit_and_conclude_while_outstanding(tmp_path) -> None:
    # One obtainFile per association (each holds a spool file), so the pull that keeps a slot
    # busy is alone: a limit of one shows every rule.
    async def main():
        (tmp_path / "files").mkdir()
        async with served(
            tmp_path / "files",
            server_kw={"max_outstanding": 1},
            client_kw={"max_outstanding": 4},
        ) as (server, client):
            ied = await client.associate(server.jid)
            assert ied.params.max_outstanding_calling == 1  # the minimum of both offers
            release, held = _hold_file_reads(client)
            first = asyncio.ensure_future(ied.set_file("up/a.bin", b"a" * 3000))
            await until(lambda: len(held) == 1, 5, "server reading the first file")
            (assoc,) = server.core.associations.values()
            assert len(assoc.outstanding) == 1
            # the client's own API keeps to the negotiated limit: the next call waits its turn
            queued = asyncio.ensure_future(ied.get_data_values(ST_VAL, "ST"))
            await asyncio.sleep(0.3)
            assert not queued.done()
            # a request sent anyway (past the client's limit): rejectPDU
            # max-serv-outstanding-exceeded in a message, bad-request on the iq; nothing served
            messages = _record(server, "send_message")
            with pytest.raises(StanzaError) as err:
                await send_unchecked(ied, mms.get_name_list("domain", "vmdSpecific"), "get", 9001)
            reason = "confirmed-requestPDU:max-serv-outstanding-exceeded"
            assert err.value.condition == "bad-request" and err.value.text.startswith(reason)
            (reject,) = [e.appl_data.mmspdu.choice for e in messages]
            assert mms.reject_reason(reject) == reason and reject.original_invoke_id == 9001
            assert len(assoc.outstanding) == 1 and ied.open
            # conclude with requests outstanding: conclude-ErrorPDU, the association goes on
            with pytest.raises(ServiceFailed) as failed:
                await asyncio.wait_for(ied.conclude(), 5)
            assert failed.value.code == "further-communication-required", failed.value
            assert ied.open and server.core.associations
            # the held pull completes, then the queued read; the next pull is served
            release.set()
            assert await asyncio.wait_for(first, 10) is None
            assert await asyncio.wait_for(queued, 5) == 42
            assert await asyncio.wait_for(ied.set_file("up/b.bin", b"b" * 10), 10) is None
            assert (tmp_path / "files" / "up" / "a.bin").read_bytes() == b"a" * 3000
            assert (tmp_path / "files" / "up" / "b.bin").read_bytes() == b"b" * 10
            assert not assoc.outstanding
            await asyncio.wait_for(ied.conclude(), 5)
            assert not ied.open and not server.core.associations

    run(main())


def _names() -> list[str]:
    """File names of several lengths, folders, and characters that grow in XER."""
    names = [f"f{i:03d}.dat" for i in range(60)]
    names += [f"COMTRADE/{'x' * (20 + i)}_{i:02d}.cfg" for i in range(30)]
    names += [f"deep/a/b/{'y' * 30}{i:02d}" for i in range(20)]
    names += [f"amp/{'&' * 40}{i:02d}" for i in range(20)]  # &amp; in XER: 5 octets each
    names += [f"lt/{'<' * 60}{i:02d}" for i in range(10)]  # segments up to 64 characters
    return names


#: On disk but no MMS FileName (GraphicString is printable ASCII, segments <= 64): not listed.
UNNAMEABLE = ["deep/caf\u00e9.txt", "ctl/tab\there", f"long/{'s' * 65}"]


@pytest.mark.timeout(20)
def test_file_directory_pages_at_a_small_pdu_size(tmp_path) -> None:
    root = tmp_path / "files"
    names = _names()
    for n, name in enumerate(names):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"z" * n)
    for name in UNNAMEABLE:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"?")

    async def main():
        async with served(root, client_kw={"max_pdu_size": 1024}) as (
            server,
            client,
        ):
            ied = await client.associate(server.jid)
            limit = ied.params.max_pdu_size
            assert limit == 1024
            replies = _record(server, "reply")
            listing = await ied.list_files()
            got = [e["name"] for e in listing]
            assert len(got) == len(set(got)), "an entry was listed twice"
            assert sorted(got) == sorted(names)
            assert {e["name"]: e["size"] for e in listing} == {n: i for i, n in enumerate(names)}
            sizes = _answers(replies, m.FileDirectoryResponse)
            assert len(sizes) > 10, sizes  # many pages (moreFollows / continueAfter)
            assert max(sizes) <= limit, f"a page of {max(sizes)} octets > PDU size {limit}"
            # one folder, paged as well
            replies.clear()
            sub = await ied.list_files("COMTRADE")
            sizes = _answers(replies, m.FileDirectoryResponse)
            assert sorted(e["name"] for e in sub) == sorted(
                n for n in names if n.startswith("COMTRADE/")
            )
            assert len(sizes) > 1 and max(sizes) <= limit
            assert await ied.get_server_directory("FILE") == got
            # name lists page within the PDU size too
            replies.clear()
            assert "MMXU1" in await ied.get_logical_device_directory("FDR1MEAS")
            names_seen = _answers(replies, m.GetNameListResponse)
            assert names_seen and max(names_seen) <= limit, names_seen

    run(main())
