"""The bridge's hold / release / announcement rate limit, without sockets or a loop."""

from __future__ import annotations

from gridbind.c37118.hold import HoldCore


def test_a_change_holds_frames_until_every_subscriber_followed():
    core = HoldCore(hold_seconds=3.0, min_change_interval=1.0)
    assert core.configuration_changed(10.0)
    assert core.defined(10.0, {"a", "b"}) == []
    assert core.data([1]) == [] and core.data([2, 3]) == []
    assert core.next_deadline() == 13.0
    assert core.subscribed("a") == [] and core.subscribed("x") == []
    assert core.subscribed("b") == [[1], [2, 3]]
    assert core.data([4]) == [[4]] and core.next_deadline() is None


def test_the_hold_ends_after_hold_seconds_or_its_bound():
    core = HoldCore(hold_seconds=3.0, max_hold_measurements=4)
    core.defined(0.0, {"a"})
    core.data([1, 2])
    assert core.handle_timer(2.9) == (False, [])
    assert core.handle_timer(3.0) == (False, [[1, 2]])
    core.defined(5.0, {"a"})
    assert core.data([1, 2, 3]) == [] and core.data([4, 5]) == [[1, 2, 3], [4, 5]]


def test_a_flapping_configuration_is_announced_once_per_interval():
    core = HoldCore(hold_seconds=3.0, min_change_interval=1.0)
    assert core.configuration_changed(0.0)
    core.defined(0.0, set())
    assert not core.configuration_changed(0.2) and not core.configuration_changed(0.5)
    assert core.next_deadline() == 1.0
    assert core.data([1]) == []  # held: the subscribers' metadata is not out yet
    assert core.handle_timer(0.9) == (False, [])
    assert core.handle_timer(1.0) == (True, [])
    assert core.defined(1.0, set()) == [[1]]  # nobody to wait for: released
    assert core.configuration_changed(2.0)


def test_a_forced_release_while_deferred_keeps_holding_after_it():
    core = HoldCore(max_hold_measurements=2, min_change_interval=1.0)
    core.defined(0.0, set())
    core.configuration_changed(0.5)
    assert core.data([1, 2]) == [] and core.data([3]) == [[1, 2], [3]]
    assert core.data([4]) == []
    announce, batches = core.handle_timer(1.0)
    assert announce and batches == []
    assert core.defined(1.0, {"a"}) == [] and core.subscribed("a") == [[4]]
