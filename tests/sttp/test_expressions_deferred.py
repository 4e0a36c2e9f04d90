"""Every error of a deferred filter evaluation becomes a FAILED answer (both STTP profiles)."""

from __future__ import annotations

import logging

import pytest

from gridbind.sttp.expressions import FilterExpressionError, evaluation_result, select_rows
from gridbind.sttp.expressions.select import Table
from gridbind.sttp.ieee2664 import SubscriptionSettings, synthetic_pmu_metadata
from gridbind.sttp.ieee2664.events import CommandFailed, CommandSucceeded, FilterRequested
from gridbind.sttp.ieee2664.publisher_session import PublisherSession
from gridbind.sttp.ieee2664.publisher_state import PublisherState
from gridbind.sttp.ieee2664.subscriber_session import SubscriberConfig, SubscriberSession

ALL = "FILTER ActiveMeasurements WHERE SignalType <> 'NONE'"


def _boom(*_args, **_kwargs):
    raise RuntimeError("a bug inside the evaluator")


def test_evaluation_result_turns_any_exception_into_the_error_value(caplog):
    assert evaluation_result(lambda: 7) == 7
    expected = FilterExpressionError("bad")
    assert evaluation_result(lambda: (_ for _ in ()).throw(expected)) is expected
    with caplog.at_level(logging.ERROR):
        result = evaluation_result(_boom)
    assert isinstance(result, FilterExpressionError) and "RuntimeError" in str(result)
    assert "a bug inside the evaluator" in caplog.text  # the traceback is logged

    def exhausted():
        raise MemoryError

    assert "memory" in str(evaluation_result(exhausted))


def test_memory_error_of_an_operation_is_a_filter_error(monkeypatch):
    from gridbind.sttp.expressions import operators

    def no_memory(*_args):
        raise MemoryError

    monkeypatch.setattr(operators, "to_text", no_memory)
    table = Table("T", ["A"], [{"A": 1}])
    with pytest.raises(FilterExpressionError, match="MemoryError"):
        select_rows([table], "FILTER T WHERE '' + A = 'x'")


@pytest.mark.parametrize("deferred", [True, False])
def test_ieee2664_unexpected_evaluation_error_answers_failed(monkeypatch, deferred):
    from gridbind.sttp.ieee2664 import publisher_session as session_module

    metadata, _signals = synthetic_pmu_metadata(4)
    monkeypatch.setattr(session_module, "select_signal_ids", _boom)
    client = SubscriberSession(SubscriberConfig())
    session = PublisherSession(PublisherState(metadata))
    session.defer_filters = deferred
    client.start()
    client.subscribe(SubscriptionSettings(filter_expression=ALL))
    events = session.receive(client.data_to_send())
    if deferred:
        [request] = [e for e in events if isinstance(e, FilterRequested)]
        session.filter_done(request.run())
    answers = client.receive(session.data_to_send())
    assert [type(a) for a in answers] == [CommandSucceeded, CommandFailed]
    assert "RuntimeError" in answers[1].message
    assert session._parked is None
    # the session still answers what comes next
    client.request_metadata()
    session.receive(client.data_to_send())
    assert client.receive(session.data_to_send())


def test_ieee2664_reviewer_case_answers_failed():
    metadata, _signals = synthetic_pmu_metadata(4)
    client = SubscriberSession(SubscriberConfig())
    session = PublisherSession(PublisherState(metadata))
    session.defer_filters = True
    text = "FILTER ActiveMeasurements WHERE '' + 1e999999999999999 = 'x'"
    client.start()
    client.subscribe(SubscriptionSettings(filter_expression=text))
    events = session.receive(client.data_to_send())
    requests = [e for e in events if isinstance(e, FilterRequested)]
    if requests:
        session.filter_done(requests[0].run())
    answers = client.receive(session.data_to_send())
    assert [type(a) for a in answers] == [CommandSucceeded, CommandFailed]


def test_draft_unexpected_evaluation_error_answers_failed(monkeypatch):
    from gridbind.sttp.draft import metadata as draft_metadata
    from gridbind.sttp.draft.events import CommandFailed as DraftFailed
    from gridbind.sttp.draft.events import FilterRequested as DraftRequested
    from gridbind.sttp.draft.session import Catalog
    from gridbind.sttp.draft.session import PublisherSession as DraftPublisher
    from gridbind.sttp.draft.session import SubscriberSession as DraftSubscriber
    from gridbind.sttp.draft.synthetic import SyntheticPmu

    pub = DraftPublisher(Catalog(SyntheticPmu(4).metadata()))
    sub = DraftSubscriber()
    for _ in range(20):
        a = pub.data_to_send()
        if a:
            sub.receive_data(a, 0.0)
        b = sub.data_to_send()
        if b:
            pub.receive_data(b, 0.0)
        if not a and not b:
            break
    assert pub.negotiated is not None
    monkeypatch.setattr(draft_metadata.MetadataDatabase, "answer", _boom)
    pub.defer_filters = True
    sub.get_metadata("SELECT PointTag FROM DataPoint", 0.0)
    [request] = pub.receive_data(sub.data_to_send(), 0.0)
    assert isinstance(request, DraftRequested)
    pub.filter_done(request.run(), 0.0)
    assert not pub.closed
    [refusal] = [e for e in sub.receive_data(pub.data_to_send(), 0.0) if type(e) is DraftFailed]
    assert "bad metadata query" in refusal.reason and "RuntimeError" in refusal.details
