from datetime import UTC, datetime, timedelta

from meta_prefect.retries import retry_delays

from meta.spec.model import Pipeline

LOGICAL = datetime(2026, 1, 1, tzinfo=UTC)


def settings(**fields: object):
    p = Pipeline.model_validate({"id": "p", "tasks": [{"id": "t", "action": {"kind": "noop"}, **fields}]})
    return p.settings_for(p.tasks[0])


def test_constant_delay_without_backoff() -> None:
    assert retry_delays(settings(retries=3, retry_delay="7s"), "p", "t", LOGICAL) == [7.0, 7.0, 7.0]


def test_airflow_default_delay_is_five_minutes() -> None:
    assert retry_delays(settings(retries=1), "p", "t", LOGICAL) == [300.0]


def test_backoff_has_airflows_deterministic_jitter_within_one_to_two_times_the_delay() -> None:
    s = settings(retries=5, retry_delay="10s", retry_backoff=2.0)
    delays = retry_delays(s, "p", "t", LOGICAL)
    for retry, delay in enumerate(delays, start=1):
        base = 10 * 2 ** (retry - 1)
        assert base <= delay < 2 * base
    assert delays == retry_delays(s, "p", "t", LOGICAL)  # same run, same delays
    assert delays != retry_delays(s, "p", "other", LOGICAL)  # but they differ per task


def test_max_retry_delay_caps_backoff() -> None:
    s = settings(retries=4, retry_delay="1s", retry_backoff=3.0, max_retry_delay="5s")
    delays = retry_delays(s, "p", "t", LOGICAL)
    assert max(delays) == 5.0 and delays[0] in (1.0,)
    assert s.max_retry_delay == timedelta(seconds=5)
