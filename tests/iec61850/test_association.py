"""The sans-IO association core, without sockets: negotiation, admission, conclude, abort."""

from __future__ import annotations

import pytest

from gridbind.iec61850.association import (
    MIN_PDU_SIZE,
    Admit,
    AssociationCore,
    AssociationEnded,
    AssociationError,
    AssociationStarted,
    InitiateParams,
    NoAssociation,
    Reject,
    RejectReason,
    bits_to_services,
    services_to_bits,
    valid_asso_id,
)

CLIENT = "client@test.local/IEC"
OTHER = "other@test.local/IEC"


def server(**kw) -> AssociationCore:
    return AssociationCore(InitiateParams(**kw))


def test_negotiation_takes_minimums_and_intersects_cbb() -> None:
    core = server(max_pdu_size=16000, max_outstanding_calling=4, nesting_level=6)
    proposal = InitiateParams(
        max_pdu_size=65000,
        max_outstanding_calling=32,
        nesting_level=20,
        parameter_cbb="11111111111",
    )
    assoc = core.accept(CLIENT, "1", proposal)
    assert assoc.params.max_pdu_size == 16000
    assert assoc.params.max_outstanding_calling == 4
    assert assoc.params.nesting_level == 6
    assert assoc.params.parameter_cbb == "11110001000"
    assert core.take_events() == [AssociationStarted(assoc)]


def test_negotiation_refusals() -> None:
    core = server()
    with pytest.raises(AssociationError, match="PDU size"):
        core.accept(CLIENT, "1", InitiateParams(max_pdu_size=MIN_PDU_SIZE - 1))
    with pytest.raises(AssociationError, match="outstanding"):
        core.accept(CLIENT, "1", InitiateParams(max_outstanding_calling=0))
    core.accept(CLIENT, "1", InitiateParams())
    with pytest.raises(AssociationError, match="already exists"):
        core.accept(CLIENT, "1", InitiateParams())
    core.accept(OTHER, "1", InitiateParams())  # ids are per JID pair
    for bad in ("", "a", "12345678901", "1:", ":1", "1:2:3", " 1", "1\n", "x" * 64):
        with pytest.raises(AssociationError, match="AssoID"):
            core.accept(CLIENT, bad, InitiateParams())
    core.accept(CLIENT, "3:1", InitiateParams())  # the n:n form is an AssoID too, kept as is
    limited = AssociationCore(max_associations=1)
    limited.accept(CLIENT, "1", InitiateParams())
    with pytest.raises(AssociationError, match="at most"):
        limited.accept(CLIENT, "2", InitiateParams())


def test_admission_rules() -> None:
    core = server(max_pdu_size=2000, max_outstanding_calling=2, services=frozenset({"read"}))
    assoc = core.accept(CLIENT, "7", InitiateParams())
    assert core.admit(CLIENT, None, 1, "read", 100) == NoAssociation(
        "not-authorized", "request outside an association"
    )
    assert isinstance(core.admit(CLIENT, "8", 1, "read", 100), NoAssociation)
    assert isinstance(core.admit(OTHER, "7", 1, "read", 100), NoAssociation)
    big = core.admit(CLIENT, "7", 1, "read", 2001)
    assert isinstance(big, Reject) and big.reason is RejectReason.INVALID_PDU
    unsupported = core.admit(CLIENT, "7", 1, "write", 10)
    assert isinstance(unsupported, Reject)
    assert unsupported.reason is RejectReason.UNRECOGNIZED_SERVICE
    assert isinstance(core.admit(CLIENT, "7", 1, "read", 10), Admit)
    dup = core.admit(CLIENT, "7", 1, "read", 10)
    assert isinstance(dup, Reject) and dup.reason is RejectReason.INVALID_INVOKE_ID
    assert isinstance(core.admit(CLIENT, "7", 2, "read", 10), Admit)
    full = core.admit(CLIENT, "7", 3, "read", 10)
    assert isinstance(full, Reject) and full.reason is RejectReason.MAX_OUTSTANDING
    with pytest.raises(AssociationError, match="outstanding"):
        core.conclude(CLIENT, "7")
    core.done(assoc, 1)
    core.done(assoc, 2)
    core.take_events()
    assert core.conclude(CLIENT, "7") is assoc
    assert core.take_events() == [AssociationEnded(assoc, "concluded")]
    assert isinstance(core.admit(CLIENT, "7", 4, "read", 10), NoAssociation)
    with pytest.raises(AssociationError):
        core.conclude(CLIENT, "7")


def test_abort_by_presence_and_link_loss() -> None:
    core = server()
    a1 = core.accept(CLIENT, "1", InitiateParams())
    a2 = core.accept(CLIENT, "2", InitiateParams())
    b1 = core.accept(OTHER, "1", InitiateParams())
    core.take_events()
    assert core.peer_unavailable(CLIENT) == [a1, a2]
    assert [e.how for e in core.take_events()] == ["aborted", "aborted"]
    assert core.of_peer(OTHER) == [b1]
    assert core.peer_unavailable("other@test.local") == [b1]  # bare JID: all resources
    core.accept(OTHER, "2", InitiateParams())
    assert len(core.link_lost()) == 1
    assert core.associations == {}


def test_client_side_checks_the_answer() -> None:
    client = AssociationCore(InitiateParams(max_pdu_size=8192, max_outstanding_calling=4))
    assoc_id = client.new_id()
    assert assoc_id != client.new_id()
    assert valid_asso_id(assoc_id)
    with pytest.raises(AssociationError):
        client.established("ied@test.local/IEC", assoc_id, InitiateParams(max_pdu_size=9000))
    with pytest.raises(AssociationError):
        client.established("ied@test.local/IEC", assoc_id, InitiateParams(max_pdu_size=8192))
    assoc = client.established(
        "ied@test.local/IEC", assoc_id, InitiateParams(max_pdu_size=4096, max_outstanding_calling=2)
    )
    assert assoc.params.max_pdu_size == 4096


def test_service_bits_roundtrip() -> None:
    bits = services_to_bits({"read", "write", "extendedGetNameList"})
    assert len(bits) == 94 and bits[4] == bits[5] == bits[93] == "1" and bits.count("1") == 3
    assert bits_to_services(bits) == {"read", "write", "extendedGetNameList"}
    assert bits_to_services("01") == {"getNameList"}


def test_new_ids_are_asso_ids_that_wrap_and_skip_live_ones() -> None:
    import itertools

    core = AssociationCore()
    assert [core.new_id() for _ in range(3)] == ["1", "2", "3"]
    core.established("ied@test.local/IEC", "1", InitiateParams())
    core._ids = itertools.count(10**10 - 1)  # the last 10-digit id, then wrap to 1 (in use)
    assert core.new_id() == "9999999999"
    assert core.new_id() == "2"
    assert all(valid_asso_id(core.new_id()) for _ in range(5))
