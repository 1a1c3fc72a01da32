"""Which devices a staged rollout reaches at each step.

Every device has a stable bucket from 0 to 9,999: the first eight bytes of
the SHA-256 of its id, as an unsigned big-endian integer, modulo 10,000. A
step that reaches `percent` of the fleet includes exactly the buckets below
`percent * 100`. A device keeps its bucket across requests, processes and
releases, so raising a step from 10 % to 50 % keeps every device of the
first 10 % and adds more.

A step may also name device groups (rings), such as a `canary` group of IT
staff machines. Steps are cumulative: a device is reached at step k when a
step up to k names one of its groups or its bucket is below the percentage of
step k.
"""

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

BUCKETS = 10_000


class RolloutPlanInvalid(ValueError):
    """Raised when a list of rollout steps is malformed."""


@dataclass(frozen=True)
class Step:
    """One rollout step: a share of the fleet in percent and optional ring groups."""

    percent: float
    groups: tuple[str, ...] = ()

    @property
    def bucket_limit(self) -> int:
        return round(self.percent * BUCKETS / 100)


def device_bucket(device_id: object) -> int:
    """Return the stable bucket (0..9,999) of a device id (a UUID or its string)."""
    digest = hashlib.sha256(str(device_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def steps_parse(raw: Iterable[Mapping[str, Any]]) -> list[Step]:
    """Build steps from `[{"percent": 10, "groups": ["canary"]}, ...]`, checking the order.

    Percentages must lie in 0..100 and must not decrease, and the last step
    must reach 100 %, so that a finished rollout reaches every device.
    """
    steps: list[Step] = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise RolloutPlanInvalid(f"step {index} is not an object: {item!r}")
        unknown = set(item) - {"percent", "groups"}
        if unknown:
            raise RolloutPlanInvalid(f"step {index} has unknown keys {sorted(unknown)}")
        percent = item.get("percent", 0)
        if isinstance(percent, bool) or not isinstance(percent, int | float):
            raise RolloutPlanInvalid(f"step {index} percent {percent!r} is not a number")
        if not 0 <= percent <= 100:
            raise RolloutPlanInvalid(f"step {index} percent {percent} is outside 0..100")
        if steps and percent < steps[-1].percent:
            raise RolloutPlanInvalid(
                f"step {index} percent {percent} is below the previous step's "
                f"{steps[-1].percent}; percentages must not decrease"
            )
        groups = item.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise RolloutPlanInvalid(f"step {index} groups {groups!r} is not a list of slugs")
        steps.append(Step(percent=float(percent), groups=tuple(groups)))
    if not steps:
        raise RolloutPlanInvalid("a rollout needs at least one step")
    if steps[-1].percent != 100:
        raise RolloutPlanInvalid(
            f"the last step reaches {steps[-1].percent} %; it must reach 100 %"
        )
    return steps


def device_included(
    steps: Sequence[Step], step_index: int, *, device_id: object, group_slugs: Collection[str]
) -> bool:
    """Return whether step `step_index` of `steps` reaches the device."""
    if step_index < 0:
        return False
    step_index = min(step_index, len(steps) - 1)
    if device_bucket(device_id) < steps[step_index].bucket_limit:
        return True
    return any(slug in step.groups for step in steps[: step_index + 1] for slug in group_slugs)


def window_contains(*, weekdays: Collection[int], start: time, end: time, moment: datetime) -> bool:
    """Return whether `moment` (UTC) falls in a weekly window from `start` to `end`.

    An `end` at or before `start` means the window runs past midnight, and
    then `weekdays` names the day on which the window opens. An empty
    `weekdays` means every day.
    """
    moment = moment.astimezone(UTC)
    clock, day = moment.time().replace(tzinfo=None), moment.weekday()
    if start < end:
        opened_on = day if start <= clock < end else None
    elif clock >= start:
        opened_on = day
    elif clock < end:
        opened_on = (day - 1) % 7
    else:
        opened_on = None
    return opened_on is not None and (not weekdays or opened_on in weekdays)
