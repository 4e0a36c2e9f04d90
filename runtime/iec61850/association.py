"""Sans-IO association core of IEC 61850-8-2 (E2E security off): state in, decisions out.

This module decides, for both roles, everything that depends on association state and nothing
that depends on sockets or XML: association ids per JID pair, Initiate negotiation (PDU size,
outstanding requests, nesting level, services supported, parameter CBB), admission of each
confirmed request (association known? PDU size? outstanding limit? invokeID unique? service
supported?), Conclude, and Abort (presence ``unavailable`` of a peer, loss of our XMPP link).

Decisions are returned as values (:class:`Admit`, :class:`Reject`, :class:`NoAssociation`) and
state changes are appended to :attr:`AssociationCore.events`, like h11: the protocol cores
(:mod:`gridbind.iec61850.server_protocol`, :mod:`~gridbind.iec61850.client_protocol`) turn them
into typed PDUs, sealed by each association's envelope layer (:mod:`~gridbind.iec61850.envelope`).
Project decisions where the 8-2 text is not available (all in this one place):

- With E2E security off, the association id travels as the ``assoID`` of the schema's
  ``AssociationContext`` (E2E_4.xsd, pattern :data:`ASSO_ID_PATTERN`: ``n`` or ``n:n``). The
  *calling* side chooses it (``n``, at most 10 digits), unique per (calling JID, called JID) pair;
  the called side refuses a duplicate or an id off the pattern and answers with the same string:
  it never extends it to the ``n:n`` (initiator:responder) form of ClearToken1, which belongs to
  the E2E handshake. An inbound ``n:n`` id is accepted as an opaque string and echoed unchanged.
- ``localDetailCalling``/``Called`` carry the maximum PDU size in octets (8-1 practice); the
  negotiated size is the minimum of both, never below :data:`MIN_PDU_SIZE`.
- A refused request is answered twice: the rejectPDU in a ``message`` (Annex D Table D.1) and, to
  keep RFC 6120's rule that every iq gets an answer, a ``bad-request`` stanza error on the iq.
- ``extendedGetNameList`` (added by 8-2) takes ServiceSupportOptions bit 93, after the 93 bits of
  ISO 9506-2.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from gridbind.iec61850.errors import Iec61850Error

__all__ = [
    "SERVICE_BITS",
    "ASSO_ID_PATTERN",
    "valid_asso_id",
    "SERVICE_SUPPORT_BITS",
    "PARAMETER_CBB_BITS",
    "MIN_PDU_SIZE",
    "DEFAULT_PDU_SIZE",
    "InitiateParams",
    "Association",
    "AssociationCore",
    "AssociationError",
    "Admit",
    "Reject",
    "NoAssociation",
    "RejectReason",
    "Event",
    "AssociationStarted",
    "AssociationEnded",
    "services_to_bits",
    "bits_to_services",
]

#: ServiceSupportOptions bit of each MMS service (ISO 9506-2; bit = ConfirmedService tag).
SERVICE_BITS: dict[str, int] = {
    "status": 0,
    "getNameList": 1,
    "identify": 2,
    "read": 4,
    "write": 5,
    "getVariableAccessAttributes": 6,
    "defineNamedVariableList": 11,
    "getNamedVariableListAttributes": 12,
    "deleteNamedVariableList": 13,
    "obtainFile": 46,
    "readJournal": 65,
    "fileOpen": 72,
    "fileRead": 73,
    "fileClose": 74,
    "fileDelete": 76,
    "fileDirectory": 77,
    "informationReport": 79,
    "conclude": 83,
    "cancel": 84,
    "extendedGetNameList": 93,
}
SERVICE_SUPPORT_BITS = 94
#: ParameterSupportOptions (str1, str2, vnam, valt, vadr, vsca, tpy, vlis, real, spare, cei).
PARAMETER_CBB_BITS = 11
#: The CBBs an 8-1/8-2 server offers: str1, str2, vnam, valt, vlis.
DEFAULT_PARAMETER_CBB = "11110001000"
MIN_PDU_SIZE = 1024
#: ``AssoID`` of E2E_4.xsd: ``n`` or ``n:n`` (initiator part, responder part), 1-10 digits each.
ASSO_ID_PATTERN = re.compile(r"[0-9]{1,10}(:[0-9]{1,10})?")
_MAX_ID = 10**10 - 1
DEFAULT_PDU_SIZE = 65000
MMS_VERSION = 1

#: Services a client may call in a confirmed-RequestPDU (conclude/cancel have their own PDUs).
CONFIRMED_SERVICES = frozenset(SERVICE_BITS) - {"informationReport", "conclude", "cancel"}


def valid_asso_id(value: object) -> bool:
    """True when ``value`` is an ``AssoID`` of E2E_4.xsd (``n`` or ``n:n``)."""
    return isinstance(value, str) and ASSO_ID_PATTERN.fullmatch(value) is not None


def services_to_bits(services: Iterable[str]) -> str:
    """The ServiceSupportOptions bit string (``0``/``1``) of a set of service names."""
    bits = ["0"] * SERVICE_SUPPORT_BITS
    for name in services:
        bits[SERVICE_BITS[name]] = "1"
    return "".join(bits)


def bits_to_services(bits: str) -> frozenset[str]:
    """Service names whose bit is set (unknown bits are ignored)."""
    return frozenset(n for n, i in SERVICE_BITS.items() if i < len(bits) and bits[i] == "1")


class RejectReason(StrEnum):
    """RejectPDU reasons used here (``group:reason`` as in ISO 9506-2 RejectPDU)."""

    UNRECOGNIZED_SERVICE = "confirmed-requestPDU:unrecognized-service"
    INVALID_INVOKE_ID = "confirmed-requestPDU:invalid-invokeID"
    INVALID_ARGUMENT = "confirmed-requestPDU:invalid-argument"
    MAX_OUTSTANDING = "confirmed-requestPDU:max-serv-outstanding-exceeded"
    MAX_RECURSION = "confirmed-requestPDU:max-recursion-exceeded"
    VALUE_OUT_OF_RANGE = "confirmed-requestPDU:value-out-of-range"
    OTHER = "confirmed-requestPDU:other"
    INVALID_PDU = "pdu-error:invalid-pdu"
    UNKNOWN_PDU_TYPE = "pdu-error:unknown-pdu-type"

    @property
    def group(self) -> str:
        return self.value.split(":")[0]

    @property
    def reason(self) -> str:
        return self.value.split(":")[1]


class AssociationError(Iec61850Error):
    """An association could not be made or used (initiate refused, duplicate id, ...)."""


@dataclass(frozen=True)
class InitiateParams:
    """The negotiable parameters of an initiate-Request/ResponsePDU."""

    max_pdu_size: int = DEFAULT_PDU_SIZE
    max_outstanding_calling: int = 8
    max_outstanding_called: int = 8
    nesting_level: int = 10
    version: int = MMS_VERSION
    parameter_cbb: str = DEFAULT_PARAMETER_CBB
    services: frozenset[str] = frozenset(CONFIRMED_SERVICES)


@dataclass
class Association:
    """One association between a calling (client) JID and a called (server) JID."""

    peer: str
    id: str
    params: InitiateParams  # the negotiated values
    peer_services: frozenset[str]
    outstanding: set[int] = field(default_factory=set)
    open: bool = True
    #: Why it ended (``concluded`` or the abort reason), once it has.
    end_reason: str = ""
    #: Association-specific (aa-specific) data sets created by the peer: name -> data set.
    datasets: dict = field(default_factory=dict)
    #: Server side: open file handles (frsmID -> state).
    files: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.peer, self.id)


@dataclass(frozen=True)
class Admit:
    """The request may be served."""

    association: Association


@dataclass(frozen=True)
class Reject:
    """Answer with a rejectPDU (and a ``bad-request`` stanza error on the iq)."""

    reason: RejectReason
    text: str
    association: Association | None = None


@dataclass(frozen=True)
class NoAssociation:
    """No association under that id: a stanza error (``item-not-found``/``not-authorized``)."""

    condition: str
    text: str


@dataclass(frozen=True)
class AssociationStarted:
    association: Association


@dataclass(frozen=True)
class AssociationEnded:
    """``how`` is ``concluded`` or ``aborted``; ``reason`` explains an abort."""

    association: Association
    how: str
    reason: str = ""


Event = AssociationStarted | AssociationEnded


class AssociationCore:
    """Association state of one 8-2 endpoint (server or client role).

    ``local`` holds what this endpoint offers: its maximum PDU size, outstanding limits,
    nesting level and supported services (as server, what it will serve).
    """

    def __init__(
        self,
        local: InitiateParams | None = None,
        *,
        max_associations: int = 64,
        max_per_peer: int = 8,
    ) -> None:
        self.local = local or InitiateParams()
        self.max_associations = max_associations
        #: Associations one account (bare JID, all resources) may hold, so that one peer
        #: cannot take every slot of :attr:`max_associations`.
        self.max_per_peer = max_per_peer
        self.associations: dict[tuple[str, str], Association] = {}
        #: ``lingering(account)``: associations of ``account`` that have ended but still hold
        #: resources of the server (e.g. a concluded one's outgoing queue); they count against
        #: :attr:`max_per_peer`.
        self.lingering: Callable[[str], int] | None = None
        self.events: list[Event] = []
        self._ids = itertools.count(1)

    # ---------------------------------------------------------------- both roles
    def get(self, peer: str, assoc_id: str) -> Association | None:
        return self.associations.get((peer, assoc_id))

    def of_peer(self, peer: str) -> list[Association]:
        return [a for a in self.associations.values() if a.peer == peer]

    def take_events(self) -> list[Event]:
        events, self.events = self.events, []
        return events

    def _end(self, assoc: Association, how: str, reason: str = "") -> None:
        if self.associations.pop(assoc.key, None) is None:
            return
        assoc.open = False
        assoc.end_reason = reason or how
        self.events.append(AssociationEnded(assoc, how, reason))

    def peer_unavailable(self, peer: str) -> list[Association]:
        """The peer's presence turned unavailable: abort every association with it.

        A bare JID (presence from an account without resource) aborts all its resources.
        """
        bare = "/" not in peer
        victims = [
            a
            for a in self.associations.values()
            if a.peer == peer or (bare and a.peer.split("/")[0] == peer)
        ]
        for assoc in victims:
            self._end(assoc, "aborted", f"presence of {peer} unavailable")
        return victims

    def link_lost(self) -> list[Association]:
        """Our own XMPP link is gone for good: every association aborts."""
        victims = list(self.associations.values())
        for assoc in victims:
            self._end(assoc, "aborted", "XMPP link lost")
        return victims

    def abort(self, assoc: Association, reason: str) -> None:
        self._end(assoc, "aborted", reason)

    # ---------------------------------------------------------------- called (server) role
    def negotiate(self, proposed: InitiateParams) -> InitiateParams:
        """The called side's answer to a proposal (raises :class:`AssociationError`)."""
        if proposed.max_pdu_size < MIN_PDU_SIZE:
            raise AssociationError(f"proposed PDU size {proposed.max_pdu_size} < {MIN_PDU_SIZE}")
        if proposed.max_outstanding_calling < 1 or proposed.max_outstanding_called < 1:
            raise AssociationError("outstanding request limits must be at least 1")
        if proposed.version < 1:
            raise AssociationError(f"MMS version {proposed.version} not supported")
        cbb = "".join(
            "1" if a == "1" and b == "1" else "0"
            for a, b in zip(
                proposed.parameter_cbb.ljust(PARAMETER_CBB_BITS, "0"),
                self.local.parameter_cbb.ljust(PARAMETER_CBB_BITS, "0"),
                strict=False,  # the longer proposal is cut to the shorter
            )
        )
        return InitiateParams(
            max_pdu_size=min(proposed.max_pdu_size, self.local.max_pdu_size),
            max_outstanding_calling=min(
                proposed.max_outstanding_calling, self.local.max_outstanding_calling
            ),
            max_outstanding_called=min(
                proposed.max_outstanding_called, self.local.max_outstanding_called
            ),
            nesting_level=min(proposed.nesting_level, self.local.nesting_level),
            version=min(proposed.version, self.local.version),
            parameter_cbb=cbb[:PARAMETER_CBB_BITS],
            services=self.local.services,
        )

    def accept(self, peer: str, assoc_id: str, proposed: InitiateParams) -> Association:
        """Handle an initiate-RequestPDU from ``peer``; returns the new association.

        Raises :class:`AssociationError` (-> initiate-ErrorPDU) for a duplicate id, too many
        associations, or parameters that cannot be negotiated.
        """
        if not valid_asso_id(assoc_id):
            raise AssociationError(f"association id {assoc_id!r} is not an AssoID (n or n:n)")
        if (peer, assoc_id) in self.associations:
            raise AssociationError(f"association {assoc_id!r} with {peer} already exists")
        if len(self.associations) >= self.max_associations:
            raise AssociationError(f"at most {self.max_associations} associations")
        account = peer.split("/", 1)[0]
        held = sum(1 for a in self.associations.values() if a.peer.split("/", 1)[0] == account)
        if self.lingering is not None:
            held += self.lingering(account)
        if held >= self.max_per_peer:
            raise AssociationError(
                f"{account} already holds {held} associations (at most {self.max_per_peer} per peer)"
            )
        negotiated = self.negotiate(proposed)
        assoc = Association(peer, assoc_id, negotiated, peer_services=proposed.services)
        self.associations[assoc.key] = assoc
        self.events.append(AssociationStarted(assoc))
        return assoc

    def admit(
        self, peer: str, assoc_id: str | None, invoke_id: int, service: str, size: int
    ) -> Admit | Reject | NoAssociation:
        """Decide on a confirmed-RequestPDU of ``size`` octets for ``service``."""
        if not assoc_id:
            return NoAssociation("not-authorized", "request outside an association")
        assoc = self.associations.get((peer, assoc_id))
        if assoc is None:
            return NoAssociation("item-not-found", f"unknown association id {assoc_id!r}")
        if size > assoc.params.max_pdu_size:
            return Reject(
                RejectReason.INVALID_PDU,
                f"PDU of {size} octets exceeds the negotiated {assoc.params.max_pdu_size}",
                assoc,
            )
        if service not in assoc.params.services or service not in CONFIRMED_SERVICES:
            return Reject(
                RejectReason.UNRECOGNIZED_SERVICE, f"service {service} not supported", assoc
            )
        if invoke_id in assoc.outstanding:
            return Reject(
                RejectReason.INVALID_INVOKE_ID, f"invokeID {invoke_id} is outstanding", assoc
            )
        if len(assoc.outstanding) >= assoc.params.max_outstanding_calling:
            return Reject(
                RejectReason.MAX_OUTSTANDING,
                f"more than {assoc.params.max_outstanding_calling} outstanding requests",
                assoc,
            )
        assoc.outstanding.add(invoke_id)
        return Admit(assoc)

    def done(self, assoc: Association, invoke_id: int) -> None:
        """The response (or error) to ``invoke_id`` has been sent."""
        assoc.outstanding.discard(invoke_id)

    def conclude(self, peer: str, assoc_id: str | None) -> Association:
        """A conclude-RequestPDU: end the association (raises when unknown or busy)."""
        assoc = self.associations.get((peer, assoc_id or ""))
        if assoc is None:
            raise AssociationError(f"unknown association id {assoc_id!r}")
        if assoc.outstanding:
            raise AssociationError(f"{len(assoc.outstanding)} requests still outstanding")
        self._end(assoc, "concluded")
        return assoc

    # ---------------------------------------------------------------- calling (client) role
    def new_id(self) -> str:
        """A fresh association id (unique for this endpoint, so per JID pair too).

        Decimal, 1..10 digits (the ``n`` form of ``AssoID``): the counter wraps after
        9999999999 and skips ids still in use.
        """
        in_use = {a.id.split(":")[0] for a in self.associations.values()}  # n of n:m too
        while True:
            value = next(self._ids)
            if value > _MAX_ID:
                self._ids = itertools.count(2)
                value = 1
            if str(value) not in in_use:
                return str(value)

    def proposal(self) -> InitiateParams:
        return self.local

    def established(self, peer: str, assoc_id: str, negotiated: InitiateParams) -> Association:
        """Record the association after an initiate-ResponsePDU (checks the answer)."""
        local = self.local
        if negotiated.max_pdu_size > local.max_pdu_size or negotiated.max_pdu_size < MIN_PDU_SIZE:
            raise AssociationError(f"server answered PDU size {negotiated.max_pdu_size}")
        if negotiated.max_outstanding_calling > local.max_outstanding_calling:
            raise AssociationError("server raised the outstanding request limit")
        assoc = Association(
            peer,
            assoc_id,
            InitiateParams(
                max_pdu_size=negotiated.max_pdu_size,
                max_outstanding_calling=negotiated.max_outstanding_calling,
                max_outstanding_called=negotiated.max_outstanding_called,
                nesting_level=negotiated.nesting_level,
                version=negotiated.version,
                parameter_cbb=negotiated.parameter_cbb,
                services=negotiated.services,
            ),
            peer_services=negotiated.services,
        )
        self.associations[assoc.key] = assoc
        self.events.append(AssociationStarted(assoc))
        return assoc

    def concluded(self, assoc: Association) -> None:
        self._end(assoc, "concluded")
