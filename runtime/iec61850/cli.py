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
    gridbind iec61850 operate --peer ... CTL1CTRL/CSWI1.Pos true [--at +5 | --cancel | ...]
    gridbind iec61850 watch --peer ... RCB [--buffered] [--gi] [--count N]   (see cli_events)
    gridbind iec61850 log --peer ... LD/LN$Log [--from T] [--to T] [--after ENTRYID --at T]
    gridbind iec61850 shell --peer ... [--script FILE]   (commands from stdin, one association)
    gridbind iec61850 devserver [--accounts ied,ops]     (a private Prosody; prints the settings)

Values are printed as JSON and read back in exactly that form (:mod:`.valuetext`: enums by name
with ``--scl``, octet strings as hex, timestamps as ISO 8601 with nanoseconds, FLOAT32 as the
shortest decimal of the same float). ``--xmpp`` omitted means DNS SRV for the JID's domain.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from .cli_control import OPERATE_EPILOG, OPERATE_HELP, add_operate_arguments, operate_command
from .valuetext import (
    ANY,
    ValueTextError,
    ValueType,
    format_value,
    parse_value,
    to_json,
    type_from_description,
    type_from_model,
)
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
    g = p.add_argument_group(
        "IEC 62351-4 end-to-end security",
        "E2E protects each 8-2 PDU from the XMPP operator; both peers must agree on the mode. "
        "The E2E certificate (keyUsage digitalSignature + keyAgreement, subjectAltName "
        "xmppAddr = this JID) is separate from the XMPP TLS one; "
        "`gridbind iec61850 e2e-certs` makes test ones.",
    )
    g.add_argument(
        "--e2e",
        choices=("off", "authenticated", "encrypted"),
        default="off",
        help="E2E security of the associations (default: off)",
    )
    g.add_argument("--e2e-cert", help="own E2E certificate (PEM: leaf, then intermediates)")
    g.add_argument("--e2e-key", help="its private key (PEM)")
    g.add_argument("--e2e-ca", help="trust anchors for the peers' E2E certificates (PEM)")
    g.add_argument(
        "--e2e-cipher",
        default="aes-128-gcm",
        help="encrypted mode: aes-128-gcm, aes-256-gcm, aes-128-cbc, aes-256-cbc",
    )


def _sntp_server(text: str) -> tuple[str, int]:
    """``HOST[:PORT]`` of an SNTP server (``[::1]:123`` for IPv6; port 123 by default)."""
    if text.startswith("[") and text.endswith("]") or text.count(":") != 1 and "]" not in text:
        return text.strip("[]"), 123
    if ":" not in text:
        return text, 123
    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _e2e(args: argparse.Namespace) -> Any:
    """The E2EConfig of ``--e2e ...`` (ConfigError with a clear text when incomplete)."""
    from .e2e import E2EConfig

    return E2EConfig.load(
        args.e2e,
        certificate=args.e2e_cert,
        key=args.e2e_key,
        trust_anchors=args.e2e_ca,
        cipher=args.e2e_cipher,
    )


# ---------------------------------------------------------------- serve
def _cmd_serve(args: argparse.Namespace) -> int:
    from .scl import SclError, load_scl
    from .server import IedServer

    try:
        model = load_scl(args.scl, args.ied)
    except SclError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.jid:
        if not model.jid:
            print("error: no --jid and no P type JID in the SCL", file=sys.stderr)
            return 2
        args.jid = model.jid.split("/")[0]
    from .e2e import ConfigError

    try:
        e2e = _e2e(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def serve() -> int:
        server = IedServer(
            model,
            _settings(args),
            files_root=args.files,
            max_pdu_size=args.max_pdu_size,
            e2e=e2e,
            log_store=args.log_db or ":memory:",
            sntp=args.sntp,
            sntp_interval_s=args.sntp_interval,
            **server_limits(args),
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


def _cmd_e2e_certs(args: argparse.Namespace) -> int:
    from .e2e_certs import main

    return main(
        [*args.jid, "--out", args.out, "--days", str(args.days), *(["--rsa"] if args.rsa else [])]
    )


# ---------------------------------------------------------------- client commands
REFERENCE_HELP = """\
references:
  LD/LN[.DO[.SDO]...[.DA[.BDA]...]]   e.g. FDR1MEAS/MMXU1.TotW.mag.f
    LD  = IED name + LDevice inst (FDR1 + MEAS); LN = prefix + lnClass + inst (MMXU1,
          LLN0); an array element is written DA(3)
  data sets: LD/LN.DSname (persistent) or @DSname (this association only: use them in
    `gridbind iec61850 shell`, the association ends with each single command)

functional constraints (FC):
  ST status  MX measurands  CO control  CF configuration  DC description
  SP set point  SG setting group (active)  SE setting group (edit)  SV substitution
  BR/RP report control  LG log control  GO/GS GOOSE  MS/US multicast/unicast SV  EX extended

values are JSON, printed and read the same way:
  true | 42 | "on" (Enum by name with --scl, or the ordinal 1) | 0.1 (FLOAT32: the shortest
  decimal of the same float) | "00AB" (octet string, hex) | "text" |
  "2024-05-01T12:00:00.500000000Z" (Timestamp; " quality=0A" when the TimeQuality octet is
  set; or seconds since 1970) | "0000000000000" (Quality and other bit strings) |
  {"mag": {"f": 1.5}} (structure) | [1, 2] (array)
  Give --scl FILE (the IED's SCL) to print and write enums by name.
"""

SG_HELP = """\
actions (LD is a logical device with a setting group control block, N a group number):
  show LD                 SGCB values (NumOfSG, ActSG, EditSG, CnfEdit, LActTm)
  activate LD N           SelectActiveSG
  get REF                 a setting of the active group (FC SG)
  set LD N REF VALUE...   select group N for editing, set each REF to VALUE, confirm
  edit LD N               SelectEditSG (the edit buffer belongs to this association)
  setval REF VALUE        SetEditSGValue (after edit, in one shell association)
  getedit REF             GetEditSGValue (FC SE)
  confirm LD              ConfirmEditSGValues
edit/setval/getedit/confirm only make sense inside `gridbind iec61850 shell` (one association).
"""


class _Session:
    """One association and what the commands need to print and parse its values."""

    def __init__(self, ied: Any, model: Any = None) -> None:
        self.ied = ied
        self.model = model

    async def type_of(self, reference: str, fc: str) -> ValueType:
        """The value type of ``reference`` in ``fc``: from the SCL if given, else the server."""
        if self.model is not None:
            from .model import ModelError

            try:
                return type_from_model(self.model.find(reference, fc), fc)
            except (ModelError, KeyError, ValueError):
                pass
        return type_from_description(await self.ied.get_data_definition(reference, fc))

    def show(self, value: Any, vt: ValueType = ANY) -> None:
        print(format_value(value, vt), flush=True)


def _load_model(args: argparse.Namespace) -> Any:
    if not getattr(args, "scl", None):
        return None
    from .scl import load_scl

    return load_scl(args.scl, args.ied)


async def _with_client(args: argparse.Namespace, action) -> int:
    from .client import Client, ClientError
    from .e2e import ConfigError
    from .scl import SclError
    from .xmpp import RequestTimeout, StanzaError

    try:
        model = _load_model(args)
        e2e = _e2e(args)
    except (SclError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    client = Client(_settings(args), max_pdu_size=args.max_pdu_size, e2e=e2e)
    try:
        await client.connect()
    except XmppConnectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        ied = await client.associate(args.peer)
        result = await action(_Session(ied, model))
        await ied.conclude()
        return result or 0
    except (ClientError, StanzaError, RequestTimeout, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        await client.close()


async def _browse(s: _Session, args: argparse.Namespace) -> None:
    tree = await s.ied.browse()

    def show(node: dict, indent: int) -> None:
        for name, sub in node.items():
            print("  " * indent + name)
            if indent < args.depth:
                show(sub, indent + 1)

    show(tree, 0)


async def _read(s: _Session, args: argparse.Namespace) -> None:
    vt = await s.type_of(args.reference, args.fc)
    s.show(await s.ied.get_data_values(args.reference, args.fc), vt)


async def _write(s: _Session, args: argparse.Namespace) -> None:
    vt = await s.type_of(args.reference, args.fc)
    await s.ied.set_data_values(args.reference, args.fc, parse_value(args.value, vt))
    print("ok", flush=True)


def _member(text: str) -> tuple[str, str]:
    ref, _, rest = text.partition("[")
    if not rest.endswith("]"):
        raise ValueTextError(f"member must be REF[FC], e.g. LD/LN.DO.DA[ST]: {text!r}")
    return ref, rest[:-1]


async def _dataset(s: _Session, args: argparse.Namespace) -> None:
    ied = s.ied
    if args.action == "list":
        s.show(await ied.get_logical_node_directory(args.target, "DATA-SET"))
    elif args.action == "show":
        s.show([f"{r}[{fc}]" for r, fc in await ied.get_data_set_directory(args.target)])
    elif args.action == "values":
        members = await ied.get_data_set_directory(args.target)
        types = [await s.type_of(ref, fc) for ref, fc in members]
        values = await ied.get_data_set_values(args.target)
        s.show([to_json(v, t) for v, t in zip(values, types, strict=False)])
    elif args.action == "create":
        if not args.members:
            raise ValueTextError("create needs at least one member REF[FC]")
        await ied.create_data_set(args.target, [_member(m) for m in args.members])
        print("ok", flush=True)
    elif args.action == "delete":
        await ied.delete_data_set(args.target)
        print("ok", flush=True)


_SG_ARITY = {
    "show": 1, "activate": 2, "edit": 2, "get": 1, "getedit": 1, "setval": 2, "confirm": 1,
}  # fmt: skip


async def _sg(s: _Session, args: argparse.Namespace) -> None:
    ied, a, action = s.ied, args.args, args.action
    if action == "set":
        if len(a) < 4 or len(a) % 2:
            raise ValueTextError("sg set needs LD GROUP REF VALUE [REF VALUE ...]")
    elif len(a) != _SG_ARITY[action]:
        raise ValueTextError(f"sg {action} takes {_SG_ARITY[action]} argument(s), see sg --help")
    if action == "show":
        s.show(await ied.get_sgcb_values(a[0]))
    elif action == "activate":
        await ied.select_active_sg(a[0], int(a[1]))
        print("ok", flush=True)
    elif action == "edit":
        await ied.select_edit_sg(a[0], int(a[1]))
        print("ok", flush=True)
    elif action == "setval":
        value = parse_value(a[1], await s.type_of(a[0], "SG"))
        await ied.set_edit_sg_value(a[0], value)
        print("ok", flush=True)
    elif action == "getedit":
        s.show(await ied.get_edit_sg_value(a[0]), await s.type_of(a[0], "SG"))
    elif action == "confirm":
        await ied.confirm_edit_sg_values(a[0])
        print("ok", flush=True)
    elif action == "set":
        ld, group, pairs = a[0], int(a[1]), a[2:]
        values = [
            (ref, parse_value(text, await s.type_of(ref, "SG")))
            for ref, text in zip(pairs[::2], pairs[1::2], strict=True)
        ]
        await ied.select_edit_sg(ld, group)
        for ref, value in values:
            await ied.set_edit_sg_value(ref, value)
        await ied.confirm_edit_sg_values(ld)
        print("ok", flush=True)
    elif action == "get":
        s.show(await ied.get_data_values(a[0], "SG"), await s.type_of(a[0], "SG"))


async def _file(s: _Session, args: argparse.Namespace) -> None:
    ied = s.ied
    if args.action in ("info", "get", "delete", "put") and not args.name:
        raise ValueTextError(f"file {args.action} needs a NAME")
    if args.action == "put" and not args.input:
        raise ValueTextError("file put needs --input LOCAL_FILE")
    if args.action == "list":
        s.show(await ied.list_files(args.name))
    elif args.action == "info":
        s.show(await ied.get_file_attribute_values(args.name))
    elif args.action == "get":
        data = await ied.get_file(args.name)
        if args.output:
            Path(args.output).write_bytes(data)
            print(f"{len(data)} bytes -> {args.output}", flush=True)
        else:
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
    elif args.action == "delete":
        await ied.delete_file(args.name)
        print("ok", flush=True)
    elif args.action == "put":
        data = Path(args.input).read_bytes()
        await ied.set_file(args.name, data)
        print(f"{len(data)} bytes -> {args.name}", flush=True)


_COMMANDS = {
    "browse": ("print the IED's model tree", _browse),
    "read": ("GetDataValues of one reference in one FC", _read),
    "write": ("SetDataValues of one reference in one FC", _write),
    "dataset": ("data set services", _dataset),
    "sg": ("setting group services", _sg),
    "file": ("file services", _file),
    "operate": (OPERATE_HELP, operate_command),
}


def _command_arguments(name: str, p: argparse.ArgumentParser) -> None:
    """The arguments of a client command (shared by the single commands and the shell)."""
    if name == "browse":
        p.add_argument("--depth", type=int, default=3, help="levels below the LDs to print")
    elif name in ("read", "write"):
        p.add_argument("reference", help="LD/LN.DO[.DA...], see below")
        p.add_argument("fc", help="functional constraint (ST, MX, CF, DC, SP, SG, ...)")
        if name == "write":
            p.add_argument("value", help="JSON, exactly as `read` prints it")
    elif name == "dataset":
        p.add_argument("action", choices=["list", "show", "values", "create", "delete"])
        p.add_argument("target", help="LN (list) or data set LD/LN.DS or @DS")
        p.add_argument("members", nargs="*", help="create: REF[FC] members")
    elif name == "sg":
        p.add_argument("action", choices=sorted([*_SG_ARITY, "set"]))
        p.add_argument("args", nargs="+")
    elif name == "file":
        p.add_argument("action", choices=["list", "info", "get", "put", "delete"])
        p.add_argument("name", nargs="?")
        p.add_argument("-o", "--output", help="get: write to this file instead of stdout")
        p.add_argument("-i", "--input", help="put: the local file to send (SetFile)")
    elif name == "operate":
        add_operate_arguments(p)


_EPILOGS = {"read": REFERENCE_HELP, "write": REFERENCE_HELP, "dataset": REFERENCE_HELP,
            "sg": SG_HELP + "\n" + REFERENCE_HELP, "operate": OPERATE_EPILOG}  # fmt: skip


def _cmd_client(args: argparse.Namespace) -> int:
    _, run = _COMMANDS[args.iec_command]

    async def action(session: _Session) -> int | None:
        return await run(session, args)  # operate: 1 when the command was refused

    return asyncio.run(_with_client(args, action))


# ---------------------------------------------------------------- shell
class _UsageError(Exception):
    """A shell line that does not parse."""


class _LineParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # never exit the shell on a typo
        raise _UsageError(f"{self.prog}: {message}")


SHELL_HELP = """\
Reads one command per line (from stdin, or --script FILE) and runs them all in ONE association,
so association-specific data sets (@name) and setting group edits work:

  read FDR1MEAS/MMXU1.TotW.mag.f MX
  dataset create @mine FDR1LD0/GGIO1.Ind1.stVal[ST] FDR1MEAS/MMXU1.TotW.mag.f[MX]
  dataset values @mine
  sg edit FDR1PROT 2
  sg setval FDR1PROT/IPTOC1.StrVal.setMag.f 1.5
  sg confirm FDR1PROT

Commands: browse, read, write, dataset, sg, file (as the single commands, without the
connection options; `help COMMAND` shows one), `help`, `quit`. The VALUE of `write` and
`sg setval` is the rest of the line, pasted as `read` prints it (no extra quoting). Blank lines
and lines starting with # are skipped. Exit status 1 if any command failed.
"""


def _shell_words(line: str) -> list[str]:
    """Split a shell line; a value (the rest of ``write REF FC VALUE`` and ``sg setval REF
    VALUE``) is kept as typed, so the JSON that ``read`` prints can be pasted back unquoted."""
    import shlex

    head = line.split(None, 3)
    if head[0] == "write" and len(head) == 4:
        return head
    if head[:2] == ["sg", "setval"] and len(head) == 4:
        return head
    return shlex.split(line)


def _shell_parser() -> tuple[_LineParser, dict[str, argparse.ArgumentParser]]:
    """The shell's parser and its command parsers by name (for ``help COMMAND``)."""
    parser = _LineParser(prog="shell", add_help=False)
    sub = parser.add_subparsers(dest="iec_command", metavar="COMMAND", parser_class=_LineParser)
    commands: dict[str, argparse.ArgumentParser] = {}
    for name, (help_text, _) in _COMMANDS.items():
        p = sub.add_parser(
            name,
            help=help_text,
            epilog=_EPILOGS.get(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _command_arguments(name, p)
        commands[name] = p
    return parser, commands


def _cmd_shell(args: argparse.Namespace) -> int:
    from .client import ClientError
    from .xmpp import RequestTimeout, StanzaError

    parser, commands = _shell_parser()
    if args.script:
        lines = Path(args.script).read_text(encoding="utf-8").splitlines()
    else:
        lines = None
    interactive = lines is None and sys.stdin.isatty()

    async def action(session: _Session) -> int:
        failed = 0
        loop = asyncio.get_running_loop()
        source = iter(lines) if lines is not None else None
        while True:
            if source is not None:
                line = next(source, None)
            else:
                if interactive:
                    print("iec61850> ", end="", flush=True)
                line = await loop.run_in_executor(None, sys.stdin.readline)
                line = line if line else None
            if line is None:
                break
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                words = _shell_words(line)
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr, flush=True)
                failed += 1
                continue
            if words[0] in ("quit", "exit"):
                break
            if words[0] == "help":
                target = commands.get(words[1]) if len(words) > 1 else None
                print((target or parser).format_help() if target else SHELL_HELP, flush=True)
                continue
            try:
                parsed = parser.parse_args(words)
                if parsed.iec_command is None:
                    raise _UsageError("no command")
                await _COMMANDS[parsed.iec_command][1](session, parsed)
            except (
                _UsageError,
                ClientError,
                StanzaError,
                RequestTimeout,
                ValueError,
                TypeError,
            ) as exc:
                print(f"error: {exc}", file=sys.stderr, flush=True)
                failed += 1
        return 1 if failed else 0

    return asyncio.run(_with_client(args, action))


# ---------------------------------------------------------------- devserver
def _cmd_devserver(args: argparse.Namespace) -> int:
    import secrets

    from .prosody import Prosody, ProsodyError, prosody_available

    if not prosody_available():
        print(
            "error: Prosody is not installed (Debian/Ubuntu: sudo apt-get install prosody)",
            file=sys.stderr,
        )
        return 2
    accounts = [a.strip() for a in args.accounts.split(",") if a.strip()]
    if not accounts or any(not a.replace("-", "").replace(".", "").isalnum() for a in accounts):
        print("error: --accounts takes names like ied,ops", file=sys.stderr)
        return 2
    directory = Path(args.dir).resolve() if args.dir else None
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    server = Prosody(domain=args.domain, directory=directory)
    try:
        server.start()
        home = server.directory
        assert home is not None  # start() configures the server, which picks its folder
        jids = {}
        for account in accounts:
            password = secrets.token_urlsafe(18)
            jids[account] = server.register(account, password)
            pw_file = home / f"{account}.password"
            pw_file.touch(mode=0o600)
            pw_file.chmod(0o600)  # touch keeps the mode of a file left by an earlier run
            pw_file.write_text(password + "\n")
    except ProsodyError as exc:
        server.cleanup()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    common = f"--xmpp 127.0.0.1:{server.c2s_port} --ca {server.ca_cert}"
    first, rest = accounts[0], accounts[1:] or accounts[:1]
    client = rest[0]
    settings = {
        "domain": args.domain,
        "xmpp": f"127.0.0.1:{server.c2s_port}",
        "ca": str(server.ca_cert),
        "accounts": {
            a: {"jid": jids[a], "password_file": str(home / f"{a}.password")} for a in accounts
        },
    }
    (home / "settings.json").write_text(json.dumps(settings, indent=1) + "\n")
    print(
        f"""\
XMPP development server (Prosody, loopback only) for {args.domain}, files in {home}
  server     127.0.0.1:{server.c2s_port} (STARTTLS), CA certificate {server.ca_cert}
  accounts   {", ".join(f"{jids[a]} (password in {home / (a + '.password')})" for a in accounts)}

Serve an IED from its SCL file as {jids[first]}:
  gridbind iec61850 serve --scl IED.scd --jid {jids[first]} \\
      --password-file {home / (first + '.password')} {common}

Then, in another terminal, use it as {jids[client]}:
  gridbind iec61850 browse --peer {jids[first]} --jid {jids[client]} \\
      --password-file {home / (client + '.password')} {common}
  (the same options for read, write, dataset, sg, file and shell)

Settings as JSON: {home / 'settings.json'}. Ctrl-C stops the server.""",
        flush=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            if not server.running:
                print("error: Prosody exited", file=sys.stderr)
                return 1
    finally:
        if directory is None:
            server.cleanup()
        else:
            server.stop()
    print("stopped", flush=True)
    return 0


def _limit_options(p: argparse.ArgumentParser) -> None:
    from .outbox import POLICIES, OutboxLimits

    g = p.add_argument_group("limits")
    g.add_argument("--max-associations", type=_positive, default=64, help="(default 64)")
    g.add_argument(
        "--max-associations-per-peer",
        type=_positive,
        default=8,
        help="associations one client JID may hold at once (default 8)",
    )
    d = OutboxLimits()
    g.add_argument(
        "--outbox-max-pdus",
        type=_positive,
        default=d.max_pdus,
        help="stanzas one association may have waiting while the XMPP stream is backed up "
        f"(default {d.max_pdus})",
    )
    g.add_argument(
        "--outbox-max-bytes",
        type=_positive,
        default=d.max_bytes,
        help=f"octets one association may have waiting (default {d.max_bytes})",
    )
    g.add_argument(
        "--outbox-policy",
        choices=POLICIES,
        default=d.policy,
        help="past that bound: drop the oldest unbuffered reports, or abort the association "
        "(default %(default)s)",
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def server_limits(args: argparse.Namespace) -> dict[str, Any]:
    """The IedServer keywords of the ``serve`` limit options."""
    from .outbox import OutboxLimits

    return {
        "max_associations": args.max_associations,
        "max_associations_per_peer": args.max_associations_per_peer,
        "outbox": OutboxLimits(
            max_pdus=args.outbox_max_pdus,
            max_bytes=args.outbox_max_bytes,
            policy=args.outbox_policy,
        ),
    }


def register(subparsers: Any) -> None:
    """Add ``gridbind iec61850 ...`` to the ``gridbind`` command."""
    parser = subparsers.add_parser("iec61850", help="IEC 61850-8-2 over XMPP: serve or use an IED")
    sub = parser.add_subparsers(dest="iec_command", metavar="ACTION", required=True)

    p = sub.add_parser("serve", help="serve an IED from an SCL file")
    p.add_argument("--scl", required=True, help="SCL file (ICD/CID/SCD)")
    p.add_argument("--ied", help="IED name (needed when the file holds several)")
    p.add_argument("--files", help="folder served by the file services")
    p.add_argument("--max-pdu-size", type=int, default=65000)
    p.add_argument("--log-db", help="sqlite file of the IED's logs (kept across restarts)")
    p.add_argument(
        "--sntp",
        action="append",
        metavar="HOST[:PORT]",
        type=_sntp_server,
        help="SNTP server for the IED's time and TimeQuality (repeat for fallbacks; port 123)",
    )
    p.add_argument(
        "--sntp-interval", type=float, default=64.0, help="SNTP poll interval in s (default 64)"
    )
    _limit_options(p)
    _xmpp_options(p, jid_required=False)
    p.set_defaults(func=_cmd_serve)

    def client_parser(name: str, help_text: str, func, epilog: str | None = None):
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("--peer", required=True, help="the IED's JID (resource IEC is added)")
        p.add_argument("--max-pdu-size", type=int, default=65000)
        p.add_argument("--scl", help="the IED's SCL file: enums by name, exact types (optional)")
        p.add_argument("--ied", help="IED name in --scl (when the file holds several)")
        _xmpp_options(p)
        p.set_defaults(func=func)
        return p

    for name, (help_text, _) in _COMMANDS.items():
        p = client_parser(name, help_text, _cmd_client, _EPILOGS.get(name))
        _command_arguments(name, p)
    from .cli_events import register_events  # watch (and log): reports and logs

    register_events(client_parser)
    p = client_parser("shell", "run several commands in one association", _cmd_shell, SHELL_HELP)
    p.add_argument("--script", help="read the commands from this file instead of stdin")

    p = sub.add_parser(
        "devserver",
        help="start a private development XMPP server and print the settings to use",
        description="Starts Prosody on 127.0.0.1 with its own CA and the given accounts "
        "(random passwords in password files), prints the serve and client commands, and runs "
        "until Ctrl-C. Needs Prosody (Debian/Ubuntu: apt-get install prosody).",
    )
    p.add_argument("--accounts", default="ied,ops", help="account names (default: ied,ops)")
    p.add_argument("--domain", default="gridbind.test", help="XMPP domain (default: %(default)s)")
    p.add_argument("--dir", help="keep config, CA, accounts here (default: a temporary folder)")
    p.set_defaults(func=_cmd_devserver)

    p = sub.add_parser(
        "e2e-certs",
        help="make a test CA and IEC 62351-4 E2E certificates bound to JIDs",
        description="Writes ca.crt (the trust anchor for --e2e-ca) and <name>.crt / <name>.key "
        "per JID (for --e2e-cert / --e2e-key). For tests and demos, not production keys.",
    )
    p.add_argument("--jid", action="append", required=True, help="a JID (repeat for several)")
    p.add_argument("--out", required=True, help="directory for the PEM files")
    p.add_argument("--days", type=int, default=30, help="validity in days (default 30)")
    p.add_argument("--rsa", action="store_true", help="RSA-2048 keys instead of P-256")
    p.set_defaults(func=_cmd_e2e_certs)

    from .demo import register_demo

    register_demo(sub)
