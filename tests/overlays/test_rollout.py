import uuid

import pytest

from overlays.rollout import (
    BUCKETS,
    RolloutPlanInvalid,
    Step,
    device_bucket,
    device_included,
    steps_parse,
    window_contains,
)

DEVICES = [uuid.UUID(int=n * 7919 + 17) for n in range(5000)]


def test_device_bucket_is_stable_and_in_range():
    device = uuid.UUID("2f1d5c7e-9b0a-4c3e-8d6f-1a2b3c4d5e6f")

    assert device_bucket(device) == device_bucket(str(device))
    assert 0 <= device_bucket(device) < BUCKETS


def test_device_bucket_known_value():
    # The first eight bytes of SHA-256("device-1"), big-endian, modulo 10,000.
    import hashlib

    expected = int.from_bytes(hashlib.sha256(b"device-1").digest()[:8], "big") % 10_000
    assert device_bucket("device-1") == expected


def test_percentage_rollout_keeps_first_ten_percent_at_fifty():
    steps = steps_parse([{"percent": 10}, {"percent": 50}, {"percent": 100}])

    at_ten = {d for d in DEVICES if device_included(steps, 0, device_id=d, group_slugs=())}
    at_fifty = {d for d in DEVICES if device_included(steps, 1, device_id=d, group_slugs=())}

    assert at_ten <= at_fifty
    assert 0.08 < len(at_ten) / len(DEVICES) < 0.12
    assert 0.46 < len(at_fifty) / len(DEVICES) < 0.54


def test_percentage_rollout_same_device_same_answer():
    steps = [Step(percent=30), Step(percent=100)]
    first = [device_included(steps, 0, device_id=d, group_slugs=()) for d in DEVICES[:500]]
    second = [device_included(steps, 0, device_id=d, group_slugs=()) for d in DEVICES[:500]]

    assert first == second


def test_ring_group_included_from_its_step_on():
    steps = steps_parse([{"percent": 0, "groups": ["canary"]}, {"percent": 20}, {"percent": 100}])
    device = DEVICES[0]

    assert device_included(steps, 0, device_id=device, group_slugs=["canary"])
    assert device_included(steps, 1, device_id=device, group_slugs=["canary"])


def test_ring_step_excludes_other_groups_at_zero_percent():
    steps = steps_parse([{"percent": 0, "groups": ["canary"]}, {"percent": 100}])

    assert not any(device_included(steps, 0, device_id=d, group_slugs=["sales"]) for d in DEVICES)


def test_last_step_reaches_every_device():
    steps = steps_parse([{"percent": 5}, {"percent": 100}])

    assert all(device_included(steps, 1, device_id=d, group_slugs=()) for d in DEVICES)


def test_steps_parse_rejects_decreasing_percent():
    with pytest.raises(RolloutPlanInvalid, match="must not decrease"):
        steps_parse([{"percent": 50}, {"percent": 10}, {"percent": 100}])


def test_steps_parse_rejects_plan_not_reaching_everyone():
    with pytest.raises(RolloutPlanInvalid, match="must reach 100"):
        steps_parse([{"percent": 10}, {"percent": 50}])


def test_steps_parse_rejects_unknown_key():
    with pytest.raises(RolloutPlanInvalid, match="unknown keys"):
        steps_parse([{"percnt": 10}, {"percent": 100}])


def test_window_contains_same_day_range():
    from datetime import UTC, datetime, time

    window = {"weekdays": [5], "start": time(2), "end": time(4)}  # Saturdays 02:00-04:00

    assert window_contains(**window, moment=datetime(2026, 12, 5, 3, 0, tzinfo=UTC))
    assert not window_contains(**window, moment=datetime(2026, 12, 5, 4, 0, tzinfo=UTC))
    assert not window_contains(**window, moment=datetime(2026, 12, 4, 3, 0, tzinfo=UTC))


def test_window_contains_past_midnight():
    from datetime import UTC, datetime, time

    window = {"weekdays": [4], "start": time(22), "end": time(2)}  # Friday 22:00 to Saturday 02:00

    assert window_contains(**window, moment=datetime(2026, 12, 4, 23, 0, tzinfo=UTC))
    assert window_contains(**window, moment=datetime(2026, 12, 5, 1, 0, tzinfo=UTC))
    assert not window_contains(**window, moment=datetime(2026, 12, 6, 1, 0, tzinfo=UTC))
