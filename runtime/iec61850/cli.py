"""``gridbind iec61850``: serve an IED from SCL over XMPP, or use one as a client.

::

    gridbind iec61850 serve --scl feeder.scd [--ied FDR1] --jid fdr1@example.org \\
        --password-file pw.txt --xmpp 127.0.0.1:5222 --ca ca.pem [--files DIR]
    gridbind iec61850 browse --peer fdr1@example.org/IEC  (+ the same --jid/--password-file/...)
    gridbind iec61850 read  --peer ... FDR1MEAS/MMXU1.TotW.mag.f MX
    gridbind iec61850 write --peer ... FDR1LD0/GGIO1.Ind1.d DC '"feeder 7"'
    gridbind iec61850 dataset --peer ... {list LN | show DS | values DS | create DS REF[FC]... |
                                          delete DS}
    gridbind iec61850 sg --peer ... {show LD | activate LD N | edit LD N | get REF |
                                     set LD N REF VALUE [REF VALUE ...]}   (edit, set, confirm)
    gridbind iec61850 file --peer ... {list | info NAME | get NAME [-o OUT] | put NAME -i IN |
                                       delete NAME}

Values on the command line are JSON (``true``, ``12.5``, ``"text"``, ``{"SIUnit": 38, ...}``);
values printed are JSON too (timestamps as ``{"seconds", "fraction", "quality"}``, bytes as hex).
``--xmpp`` omitted means DNS SRV for the JID's domain.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from .model import Timestamp
from .xmpp import XmppConnectError, XmppError, XmppSettings, parse_address

__all__ = ["register"]

log = logging.getLogger(__name__)


def _settings(args: argparse.Namespace) -> XmppSettings:
    host = port = None
    if args.xmpp:
        host, port = parse_address(args.xmpp)
    password = ""
    if args.password_file:
        password = Path(args.password_file).read_text().strip()
    return XmppSettings(
        jid=args.jid,
        password=password,
        ca_file=args.ca,
        host=host,
        port=port,
        direct_tls=args.direct_tls,
        sasl_mechanism=args.sasl,
        client_cert=args.client_cert,
        client_key=args.client_key,
        request_timeout=args.timeout,
    )


def _xmpp_options(p: argparse.ArgumentParser, jid_required: bool = True) -> None:
    p.add_argument(
        "--jid",
        required=jid_required,
        help="own XMPP account (resource IEC is added)"
        + ("" if jid_required else "; default: the P type JID of the IED's ConnectedAP"),
    )
    p.add_argument("--password-file", help="file holding the account's password")
    p.add_argument("--xmpp", metavar="HOST:PORT", help="XMPP server (default: DNS SRV)")
    p.add_argument("--ca", required=True, help="CA certificate(s) the XMPP server must chain to")
    p.add_argument("--direct-tls", action="store_true", help="direct TLS instead of STARTTLS")
    p.add_argument("--sasl", help="SASL mechanism (PLAIN, SCRAM-SHA-1, EXTERNAL; default: best)")
    p.add_argument("--client-cert", help="client certificate (SASL EXTERNAL)")
    p.add_argument("--client-key", help="client certificate key (SASL EXTERNAL)")
    p.add_argument("--timeout", type=float, default=15.0, help="request timeout in seconds")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Timestamp):
        return {"seconds": value.seconds, "fraction": value.fraction, "quality": value.quality}
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, Exception):
        return {"error": str(value)}
    return value


def _print(value: Any) -> None:
    print(json.dumps(_jsonable(value), indent=1 if isinstance(value, (dict, list)) else None))


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise SystemExit(f"value must be JSON (strings in quotes): {text!r}") from None


# ---------------------------------------------------------------- serve
def _cmd_serve(args: argparse.Namespace) -> int:
    from .scl import SclError, load_scl
    from .server import IedServer

    try:
        model = load_scl(args.scl, args.ied)
    except SclError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.jid and not model.jid:
        print("error: no --jid and no P type JID in the SCL", file=sys.stderr)
        return 2
    args.jid = args.jid or model.jid.split("/")[0]

    async def serve() -> int:
        server = IedServer(
            model, _settings(args), files_root=args.files, max_pdu_size=args.max_pdu_size
        )
        try:
            await server.start()
        except XmppError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        lds = ", ".join(model.children)
        print(f"serving IED {model.ied_name} ({lds}) as {server.jid}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.close()
        return 0

    return asyncio.run(serve())


# ---------------------------------------------------------------- client commands
async def _with_client(args: argparse.Namespace, action) -> int:
    from .client import Client, ClientError
    from .xmpp import RequestTimeout, StanzaError

    client = Client(_settings(args), max_pdu_size=args.max_pdu_size)
    try:
        await client.connect()
    except XmppConnectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        ied = await client.associate(args.peer)
        result = await action(ied)
        await ied.conclude()
        return result or 0
    except (ClientError, StanzaError, RequestTimeout, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        await client.close()


def _cmd_browse(args: argparse.Namespace) -> int:
    async def action(ied) -> None:
        tree = await ied.browse()

        def show(node: dict, indent: int) -> None:
            for name, sub in node.items():
                print("  " * indent + name)
                if indent < args.depth:
                    show(sub, indent + 1)

        show(tree, 0)

    return asyncio.run(_with_client(args, action))


def _cmd_read(args: argparse.Namespace) -> int:
    async def action(ied) -> None:
        _print(await ied.get_data_values(args.reference, args.fc))

    return asyncio.run(_with_client(args, action))


def _cmd_write(args: argparse.Namespace) -> int:
    value = _parse_value(args.value)

    async def action(ied) -> None:
        await ied.set_data_values(args.reference, args.fc, value)
        print("ok")

    return asyncio.run(_with_client(args, action))


def _member(text: str) -> tuple[str, str]:
    ref, _, rest = text.partition("[")
    if not rest.endswith("]"):
        raise SystemExit(f"member must be REF[FC], e.g. LD/LN.DO.DA[ST]: {text!r}")
    return ref, rest[:-1]


def _cmd_dataset(args: argparse.Namespace) -> int:
    async def action(ied) -> None:
        if args.action == "list":
            _print(await ied.get_logical_node_directory(args.target, "DATA-SET"))
        elif args.action == "show":
            _print([f"{r}[{fc}]" for r, fc in await ied.get_data_set_directory(args.target)])
        elif args.action == "values":
            _print(await ied.get_data_set_values(args.target))
        elif args.action == "create":
            if not args.members:
                raise SystemExit("create needs at least one member REF[FC]")
            await ied.create_data_set(args.target, [_member(m) for m in args.members])
            print("ok")
        elif args.action == "delete":
            await ied.delete_data_set(args.target)
            print("ok")

    return asyncio.run(_with_client(args, action))


def _cmd_sg(args: argparse.Namespace) -> int:
    async def action(ied) -> None:
        a = args.args
        if args.action == "show":
            _print(await ied.get_sgcb_values(a[0]))
        elif args.action == "activate":
            await ied.select_active_sg(a[0], int(a[1]))
            print("ok")
        elif args.action == "edit":
            await ied.select_edit_sg(a[0], int(a[1]))
            print("ok")
        elif args.action == "set":
            # One association must select, set and confirm: "set LD N REF VALUE [REF VALUE...]"
            ld, group, pairs = a[0], int(a[1]), a[2:]
            if not pairs or len(pairs) % 2:
                raise SystemExit("set needs LD GROUP REF VALUE [REF VALUE ...]")
            await ied.select_edit_sg(ld, group)
            for ref, text in zip(pairs[::2], pairs[1::2]):
                await ied.set_edit_sg_value(ref, _parse_value(text))
            await ied.confirm_edit_sg_values(ld)
            print("ok")
        elif args.action == "get":
            _print(await ied.get_data_values(a[0], "SG"))

    return asyncio.run(_with_client(args, action))


def _cmd_file(args: argparse.Namespace) -> int:
    async def action(ied) -> None:
        if args.action == "list":
            _print(await ied.list_files(args.name))
        elif args.action == "info":
            _print(await ied.get_file_attribute_values(args.name))
        elif args.action == "get":
            data = await ied.get_file(args.name)
            if args.output:
                Path(args.output).write_bytes(data)
                print(f"{len(data)} bytes -> {args.output}")
            else:
                sys.stdout.buffer.write(data)
        elif args.action == "delete":
            await ied.delete_file(args.name)
            print("ok")
        elif args.action == "put":
            data = Path(args.input).read_bytes()
            await ied.set_file(args.name, data)
            print(f"{len(data)} bytes -> {args.name}")

    if args.action in ("info", "get", "delete", "put") and not args.name:
        print(f"error: file {args.action} needs a NAME", file=sys.stderr)
        return 2
    if args.action == "put" and not args.input:
        print("error: file put needs --input LOCAL_FILE", file=sys.stderr)
        return 2
    return asyncio.run(_with_client(args, action))


def register(subparsers: Any) -> None:
    """Add ``gridbind iec61850 ...`` to the ``gridbind`` command."""
    parser = subparsers.add_parser("iec61850", help="IEC 61850-8-2 over XMPP: serve or use an IED")
    sub = parser.add_subparsers(dest="iec_command", metavar="ACTION", required=True)

    p = sub.add_parser("serve", help="serve an IED from an SCL file")
    p.add_argument("--scl", required=True, help="SCL file (ICD/CID/SCD)")
    p.add_argument("--ied", help="IED name (needed when the file holds several)")
    p.add_argument("--files", help="folder served by the file services")
    p.add_argument("--max-pdu-size", type=int, default=65000)
    _xmpp_options(p, jid_required=False)
    p.set_defaults(func=_cmd_serve)

    def client_parser(name: str, help_text: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--peer", required=True, help="the IED's JID (resource IEC is added)")
        p.add_argument("--max-pdu-size", type=int, default=65000)
        _xmpp_options(p)
        p.set_defaults(func=func)
        return p

    p = client_parser("browse", "print the IED's model tree", _cmd_browse)
    p.add_argument("--depth", type=int, default=3, help="levels below the LDs to print")
    p = client_parser("read", "GetDataValues", _cmd_read)
    p.add_argument("reference")
    p.add_argument("fc")
    p = client_parser("write", "SetDataValues (value in JSON)", _cmd_write)
    p.add_argument("reference")
    p.add_argument("fc")
    p.add_argument("value")
    p = client_parser("dataset", "data set services", _cmd_dataset)
    p.add_argument("action", choices=["list", "show", "values", "create", "delete"])
    p.add_argument("target", help="LN (list) or data set LD/LN.DS or @DS")
    p.add_argument("members", nargs="*", help="create: REF[FC] members")
    p = client_parser("sg", "setting group services", _cmd_sg)
    p.add_argument("action", choices=["show", "activate", "edit", "set", "get"])
    p.add_argument("args", nargs="+")
    p = client_parser("file", "file services", _cmd_file)
    p.add_argument("action", choices=["list", "info", "get", "put", "delete"])
    p.add_argument("name", nargs="?")
    p.add_argument("-o", "--output", help="get: write to this file instead of stdout")
    p.add_argument("-i", "--input", help="put: the local file to send (SetFile)")

    from .demo import register_demo

    register_demo(sub)
