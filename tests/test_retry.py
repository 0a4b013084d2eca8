"""The one back-off rule (wxcli.retry.backoff) that every retry loop uses."""

from wxcli.retry import backoff


def test_backoff_doubles_from_base_up_to_the_cap():
    waits = [backoff(n, base=1.0, cap=10.0, jitter=0) for n in range(6)]
    assert waits == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_backoff_jitter_spreads_around_the_delay():
    assert backoff(2, base=1.0, cap=60.0, rand=lambda: 0.0) == 2.0  # 50 % of 4
    assert backoff(2, base=1.0, cap=60.0, rand=lambda: 0.999999) > 5.99  # ~150 %
    assert backoff(2, base=1.0, cap=60.0, jitter=0.25, rand=lambda: 0.0) == 3.0


def test_backoff_survives_huge_and_negative_attempt_numbers():
    assert backoff(10_000, base=2.0, cap=30.0, jitter=0) == 30.0
    assert backoff(-3, base=2.0, cap=30.0, jitter=0) == 2.0
