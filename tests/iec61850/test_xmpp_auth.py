"""SASL EXTERNAL with a client certificate and DNS SRV discovery, through a real Prosody.

EXTERNAL: stock Prosody 0.12 offers it to no client, so the ``prosody_ccert`` fixture adds a host
(``ccert.test.local``) served by the community module mod_auth_ccert (Debian prosody-modules): it
asks for a client certificate, checks the chain against the test CA and takes the account from the
certificate's id-on-xmppAddr. DNS SRV: a tiny DNS server on 127.0.0.1 (stdlib sockets, below)
answers ``_xmpp-client._tcp.test.local``; slixmpp's real resolver path (aiodns/c-ares) is pointed
at it through ``XmppSettings.dns_servers``, so nothing is stubbed and no network is used.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from pathlib import Path

import pytest

from gridbind.iec61850.client import Client
from gridbind.iec61850.prosody import make_client_cert, make_test_pki
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.server import IedServer
from gridbind.iec61850.xmpp import IecXmpp, XmppConnectError, XmppSettings

FEEDER = Path(__file__).parent / "data" / "feeder.scd"
pytestmark = pytest.mark.prosody


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def cert_settings(prosody, user: str, cert=None, key=None, **kw) -> XmppSettings:
    """Settings of ``user@ccert.test.local`` logging in with SASL EXTERNAL (STARTTLS port)."""
    if cert is None:
        cert, key = prosody.issue_client_cert(user)
    base = dict(
        jid=f"{user}@{prosody.cert_domain}",
        ca_file=prosody.ca_cert,
        host="127.0.0.1",
        port=prosody.c2s_port,
        sasl_mechanism="EXTERNAL",
        client_cert=cert,
        client_key=key,
        connect_timeout=8,
        request_timeout=8,
    )
    base.update(kw)
    return XmppSettings(**base)


# ---------------------------------------------------------------------- SASL EXTERNAL


@pytest.mark.timeout(30)
@pytest.mark.parametrize("direct_tls", [False, True], ids=["starttls", "direct-tls"])
def test_external_login_with_client_certificate(prosody_ccert, direct_tls) -> None:
    user = f"cert-login-{int(direct_tls)}"
    port = prosody_ccert.c2s_tls_port if direct_tls else prosody_ccert.c2s_port

    async def main() -> None:
        xmpp = IecXmpp(
            cert_settings(prosody_ccert, user, port=port, direct_tls=direct_tls), lambda i: None
        )
        await xmpp.start()
        try:
            assert xmpp.connected
            assert xmpp.full_jid == f"{user}@{prosody_ccert.cert_domain}/IEC"
            assert await xmpp.ping() < 5
        finally:
            await xmpp.close()

    run(main())
    assert f"Authenticated as {user}@{prosody_ccert.cert_domain}" in (
        prosody_ccert.log_path.read_text()
    )


@pytest.mark.timeout(60)
def test_association_over_external(prosody_ccert) -> None:
    """An IED and a client, both authenticated by certificate, do GetDataValues."""

    async def main() -> None:
        server = IedServer(load_scl(FEEDER), cert_settings(prosody_ccert, "ied-cert"))
        client = Client(cert_settings(prosody_ccert, "ops-cert"))
        await asyncio.gather(server.start(), client.connect())
        try:
            assert server.jid == f"ied-cert@{prosody_ccert.cert_domain}/IEC"
            ied = await client.associate(server.jid)
            assert await ied.get_data_values("FDR1MEAS/MMXU1.TotW.mag.f", "MX") == 1500.5
            assert await ied.get_data_values("FDR1LD0/LLN0.Mod.stVal", "ST") == 1
            await ied.conclude()
        finally:
            await asyncio.gather(client.close(), server.close())

    run(main(), 45)


@pytest.mark.timeout(40)
def test_external_refuses_foreign_certificates(prosody_ccert, tmp_path) -> None:
    """Another JID's certificate, another CA's certificate, or none: a clear error, fast."""
    other_jid_cert = prosody_ccert.issue_client_cert("someone-else")
    rogue = make_test_pki(tmp_path / "rogue", prosody_ccert.domain)
    rogue_cert = make_client_cert(
        rogue.ca_cert, rogue.ca_key, f"victim@{prosody_ccert.cert_domain}", tmp_path / "rogue"
    )
    cases = {
        # a valid certificate of the right CA, but for someone-else@: never logs in as victim@
        "other JID": cert_settings(prosody_ccert, "victim", *other_jid_cert),
        # the right JID, signed by a CA the server does not trust
        "other CA": cert_settings(prosody_ccert, "victim", *rogue_cert),
        "other CA, direct TLS": cert_settings(
            prosody_ccert, "victim", *rogue_cert, port=prosody_ccert.c2s_tls_port, direct_tls=True
        ),
        "no certificate": cert_settings(prosody_ccert, "victim", "", ""),
    }

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for what, settings in cases.items():
            started = loop.time()
            with pytest.raises(XmppConnectError, match="authentication") as err:
                await IecXmpp(settings, lambda i: None).start()
            assert "victim@ccert.test.local" in str(err.value), what
            # refused in SASL at once, not left to the connect timeout
            assert loop.time() - started < 4, what

    run(main(), 35)
    log = prosody_ccert.log_path.read_text()
    assert "Authenticated as victim@" not in log
    # refused by mod_auth_ccert for the right reasons, after a completed TLS handshake
    assert "Invalid client certificate chain" in log and "No certificate provided" in log


@pytest.mark.timeout(30)
def test_external_where_not_offered_and_bad_key_files(prosody_ccert, tmp_path) -> None:
    """A password host offers no EXTERNAL even with a good certificate; unusable files fail early."""
    account = prosody_ccert.register("pw-only", "s3cret-test")
    cert, key = make_client_cert(
        prosody_ccert.pki.ca_cert, prosody_ccert.pki.ca_key, account, tmp_path
    )
    _, other_key = prosody_ccert.issue_client_cert("mismatch")

    async def main() -> None:
        s = cert_settings(prosody_ccert, "pw-only", cert, key, jid=account)
        with pytest.raises(XmppConnectError, match="authentication"):
            await IecXmpp(s, lambda i: None).start()
        for bad_cert, bad_key in ((cert, other_key), (tmp_path / "missing.pem", key)):
            s = cert_settings(prosody_ccert, "x", bad_cert, bad_key)
            with pytest.raises(XmppConnectError, match="client certificate"):
                await IecXmpp(s, lambda i: None).start()

    run(main(), 20)


# ---------------------------------------------------------------------- DNS SRV

_SRV, _A, _AAAA = 33, 1, 28


def _encode_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"


class TinyDns:
    """A UDP DNS server on 127.0.0.1 for a few fixed records (stdlib only, a thread).

    ``srv``: name -> (port, target); ``a``: name -> IPv4. Every other name is NXDOMAIN; a known
    name without a record of the asked type is an empty NOERROR answer. ``queries`` records
    ``(name, qtype)`` in arrival order.
    """

    def __init__(self, srv: dict[str, tuple[int, str]], a: dict[str, str]) -> None:
        self.srv = {k.lower(): v for k, v in srv.items()}
        self.a = {k.lower(): v for k, v in a.items()}
        self.queries: list[tuple[str, int]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> TinyDns:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            answer = self.answer(data)
            if answer is not None:
                self.sock.sendto(answer, peer)

    def answer(self, query: bytes) -> bytes | None:
        if len(query) < 12:
            return None
        ident, flags, qdcount = struct.unpack("!HHH", query[:6])
        if qdcount != 1:
            return None
        labels, pos = [], 12
        while pos < len(query) and query[pos]:
            n = query[pos]
            labels.append(query[pos + 1 : pos + 1 + n].decode("ascii", "replace"))
            pos += 1 + n
        question = query[12 : pos + 5]  # QNAME + 0 + QTYPE + QCLASS, echoed as sent
        qtype = struct.unpack("!H", query[pos + 1 : pos + 3])[0]
        name = ".".join(labels).lower()
        self.queries.append((name, qtype))
        records = []
        if qtype == _SRV and name in self.srv:
            port, target = self.srv[name]
            rdata = struct.pack("!HHH", 0, 5, port) + _encode_name(target)
            records.append(struct.pack("!HHIH", _SRV, 1, 60, len(rdata)) + rdata)
        elif qtype == _A and name in self.a:
            rdata = socket.inet_aton(self.a[name])
            records.append(struct.pack("!HHIH", _A, 1, 60, len(rdata)) + rdata)
        known = name in self.srv or name in self.a
        rcode = 0 if known else 3  # NXDOMAIN
        # QR, opcode 0, AA, RD copied from the query, RA
        out_flags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode
        header = struct.pack("!HHHHHH", ident, out_flags, 1, len(records), 0, 0)
        # each answer names the question by a compression pointer to offset 12
        return header + question + b"".join(b"\xc0\x0c" + r for r in records)


@pytest.mark.timeout(40)
@pytest.mark.parametrize("direct_tls", [False, True], ids=["xmpp-client", "xmpps-client"])
def test_srv_lookup_finds_the_server(prosody, xmpp_account, direct_tls) -> None:
    account = xmpp_account("srv-ok")
    domain = prosody.domain
    # The SRV target and ports are not the JID's domain nor 5222/5223: only the SRV answers lead
    # to this Prosody.
    srv = {
        f"_xmpp-client._tcp.{domain}": (prosody.c2s_port, f"xmpp.{domain}."),
        f"_xmpps-client._tcp.{domain}": (prosody.c2s_tls_port, f"xmpp.{domain}."),
    }
    with TinyDns(srv, {f"xmpp.{domain}": "127.0.0.1"}) as dns:

        async def main() -> None:
            s = XmppSettings(
                jid=account.jid,
                password=account.password,
                ca_file=prosody.ca_cert,
                sasl_mechanism="PLAIN",
                direct_tls=direct_tls,
                dns_servers=(dns.address,),
                connect_timeout=10,
            )
            assert s.host is None and s.port is None
            xmpp = IecXmpp(s, lambda i: None)
            await xmpp.start()
            try:
                assert xmpp.connected and xmpp.full_jid == f"{account.jid}/IEC"
                assert xmpp._client.transport.get_extra_info("peername")[1] == (
                    prosody.c2s_tls_port if direct_tls else prosody.c2s_port
                )
            finally:
                await xmpp.close()

        run(main(), 30)
    service = "xmpps-client" if direct_tls else "xmpp-client"
    assert (f"_{service}._tcp.{domain}", _SRV) in dns.queries
    assert (f"xmpp.{domain}", _A) in dns.queries


@pytest.mark.timeout(30)
def test_srv_nxdomain_from_the_configured_server_is_a_clear_error(prosody, xmpp_account) -> None:
    account = xmpp_account("srv-nx")
    with TinyDns({}, {}) as dns:

        async def main() -> None:
            s = XmppSettings(
                jid=account.jid,
                password=account.password,
                ca_file=prosody.ca_cert,
                sasl_mechanism="PLAIN",
                dns_servers=(dns.address,),
                connect_timeout=5,
            )
            with pytest.raises(XmppConnectError, match="DNS"):
                await IecXmpp(s, lambda i: None).start()

        run(main(), 20)
    assert (f"_xmpp-client._tcp.{prosody.domain}", _SRV) in dns.queries
