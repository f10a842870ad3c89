from __future__ import annotations

import pytest
from core_toy_backends import FakeClock

from triggers.locking import Lease, LocalLeaseTable, poll_until

KEY = ("store", "session")


def test_new_lease_has_a_fresh_token_and_an_expiry(clock: FakeClock) -> None:
    first = Lease.new("u", 10.0, clock)
    second = Lease.new("u", 10.0, clock)
    assert first.token != second.token
    assert len(first.token) == 32
    assert first.uid == "u"
    assert first.ttl == 10.0
    assert first.acquired_at == clock.now
    assert first.expires_at == clock.now + 10.0


def test_lease_expires_exactly_at_its_ttl(clock: FakeClock) -> None:
    lease = Lease.new("u", 10.0, clock)
    assert not lease.expired(clock)
    clock.advance(9.999)
    assert not lease.expired(clock)
    clock.advance(0.001)
    assert lease.expired(clock)


def test_renewed_lease_keeps_token_and_extends_from_now(clock: FakeClock) -> None:
    lease = Lease.new("u", 10.0, clock)
    clock.advance(8)
    renewed = lease.renewed(clock)
    assert renewed.token == lease.token
    assert renewed.acquired_at == lease.acquired_at
    assert renewed.expires_at == clock.now + 10.0
    clock.advance(5)
    assert lease.expired(clock)
    assert not renewed.expired(clock)


def test_acquire_a_free_lease(clock: FakeClock) -> None:
    table = LocalLeaseTable()
    lease = Lease.new("u", 10, clock)
    assert table.try_acquire(KEY, lease, clock())
    assert table.holds(KEY, lease.token)


def test_held_unexpired_lease_is_refused(clock: FakeClock) -> None:
    table = LocalLeaseTable()
    mine = Lease.new("u", 10, clock)
    assert table.try_acquire(KEY, mine, clock())
    clock.advance(9.9)
    theirs = Lease.new("u", 10, clock)
    assert not table.try_acquire(KEY, theirs, clock())
    assert table.holds(KEY, mine.token)
    assert not table.holds(KEY, theirs.token)


def test_expired_lease_is_taken_over(clock: FakeClock) -> None:
    table = LocalLeaseTable()
    mine = Lease.new("u", 10, clock)
    table.try_acquire(KEY, mine, clock())
    clock.advance(10)
    theirs = Lease.new("u", 10, clock)
    assert table.try_acquire(KEY, theirs, clock())
    assert table.holds(KEY, theirs.token)
    assert not table.holds(KEY, mine.token)


def test_own_lease_can_be_acquired_again(clock: FakeClock) -> None:
    table = LocalLeaseTable()
    mine = Lease.new("u", 10, clock)
    assert table.try_acquire(KEY, mine, clock())
    assert table.try_acquire(KEY, mine, clock())
    assert table.holds(KEY, mine.token)


def test_keys_are_independent(clock: FakeClock) -> None:
    table = LocalLeaseTable()
    assert table.try_acquire(("store", "a"), Lease.new("a", 10, clock), clock())
    assert table.try_acquire(("store", "b"), Lease.new("b", 10, clock), clock())
    assert table.try_acquire(("other", "a"), Lease.new("a", 10, clock), clock())


def test_renew_extends_only_our_own_lease(clock: FakeClock) -> None:
    table = LocalLeaseTable()
    mine = Lease.new("u", 10, clock)
    table.try_acquire(KEY, mine, clock())
    clock.advance(8)
    assert table.renew(KEY, mine.renewed(clock))
    clock.advance(8)  # 16 s after acquiring, 8 s after renewing: still ours
    theirs = Lease.new("u", 10, clock)
    assert not table.try_acquire(KEY, theirs, clock())


def test_renew_fails_once_taken_over(clock: FakeClock) -> None:
    table = LocalLeaseTable()
    mine = Lease.new("u", 10, clock)
    table.try_acquire(KEY, mine, clock())
    clock.advance(11)
    theirs = Lease.new("u", 10, clock)
    assert table.try_acquire(KEY, theirs, clock())
    assert not table.renew(KEY, mine.renewed(clock))
    assert table.holds(KEY, theirs.token)


def test_renew_of_a_lease_never_acquired_fails(clock: FakeClock) -> None:
    table = LocalLeaseTable()
    assert not table.renew(KEY, Lease.new("u", 10, clock))
    assert not table.holds(KEY, "anything")


def test_release_frees_our_lease(clock: FakeClock) -> None:
    table = LocalLeaseTable()
    mine = Lease.new("u", 10, clock)
    table.try_acquire(KEY, mine, clock())
    table.release(KEY, mine.token)
    assert not table.holds(KEY, mine.token)
    assert table.try_acquire(KEY, Lease.new("u", 10, clock), clock())


def test_release_never_frees_a_lease_taken_over(clock: FakeClock) -> None:
    table = LocalLeaseTable()
    mine = Lease.new("u", 10, clock)
    table.try_acquire(KEY, mine, clock())
    clock.advance(10)
    theirs = Lease.new("u", 10, clock)
    table.try_acquire(KEY, theirs, clock())
    table.release(KEY, mine.token)
    assert table.holds(KEY, theirs.token)
    assert not table.try_acquire(KEY, Lease.new("u", 10, clock), clock())


def test_release_of_an_unknown_key_is_a_no_op() -> None:
    LocalLeaseTable().release(KEY, "token")


def test_holds_is_true_for_an_expired_but_not_taken_over_lease(clock: FakeClock) -> None:
    table = LocalLeaseTable()
    mine = Lease.new("u", 10, clock)
    table.try_acquire(KEY, mine, clock())
    clock.advance(100)
    assert table.holds(KEY, mine.token)


# --- poll_until ---------------------------------------------------------------


class FakeTimer:
    """Injected ``sleep``/``monotonic``: sleeping only moves the clock."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def test_poll_until_gives_up_after_the_timeout() -> None:
    timer = FakeTimer()
    attempts: list[float] = []

    def attempt() -> bool:
        attempts.append(timer.now)
        return False

    assert not poll_until(attempt, timeout=2.0, sleep=timer.sleep, monotonic=timer.monotonic)
    assert len(attempts) > 2
    assert timer.now == pytest.approx(102.0)
    assert attempts[-1] == pytest.approx(102.0)


def test_poll_until_backs_off_up_to_max_delay() -> None:
    timer = FakeTimer()
    poll_until(
        lambda: False,
        timeout=5.0,
        first_delay=0.01,
        max_delay=0.1,
        sleep=timer.sleep,
        monotonic=timer.monotonic,
    )
    # Jitter scales each wait by 0.5..1.5; the final wait is cut to what remains.
    assert all(wait <= 0.1 * 1.5 for wait in timer.sleeps)
    assert timer.sleeps[0] <= 0.01 * 1.5
    assert max(timer.sleeps) > 0.01 * 1.5


def test_poll_until_succeeds_on_the_nth_attempt() -> None:
    timer = FakeTimer()
    calls = 0

    def attempt() -> bool:
        nonlocal calls
        calls += 1
        return calls == 4

    assert poll_until(attempt, timeout=10.0, sleep=timer.sleep, monotonic=timer.monotonic)
    assert calls == 4
    assert len(timer.sleeps) == 3


def test_poll_until_success_at_once_never_sleeps() -> None:
    timer = FakeTimer()
    assert poll_until(lambda: True, timeout=0, sleep=timer.sleep, monotonic=timer.monotonic)
    assert timer.sleeps == []


def test_poll_until_zero_timeout_tries_exactly_once() -> None:
    timer = FakeTimer()
    calls = 0

    def attempt() -> bool:
        nonlocal calls
        calls += 1
        return False

    assert not poll_until(attempt, timeout=0, sleep=timer.sleep, monotonic=timer.monotonic)
    assert calls == 1
    assert timer.sleeps == []
