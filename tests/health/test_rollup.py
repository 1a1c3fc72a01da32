"""Daily roll-up of raw check-ins and the seat-use snapshot."""

import datetime as dt

from django.utils import timezone

from health.checkins import checkins_roll_up, seat_usage_snapshot
from health.models import CheckIn, CheckInDaily, SeatUsageDaily
from tests.health.conftest import Fleet, settings_set

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
YESTERDAY = NOW - dt.timedelta(days=1)


def test_roll_up_totals_per_day_and_product(fleet: Fleet) -> None:
    first, second = fleet.device(), fleet.device()
    fleet.checkin(first, at=YESTERDAY, validation_ms=2.0)
    fleet.checkin(first, at=YESTERDAY + dt.timedelta(hours=1), validation_ms=4.0)
    fleet.checkin(second, at=YESTERDAY, decision="grace")
    fleet.checkin(second, at=NOW, decision="expired")  # today: not rolled up yet

    checkins_roll_up(now=NOW)

    [day] = CheckInDaily.objects.all()
    assert day.day == YESTERDAY.date()
    assert day.checkins == 3
    assert day.devices == 2
    assert day.decisions == {"valid": 2, "grace": 1}
    assert day.validation_ms_avg == (2.0 + 4.0 + 3.5) / 3


def test_roll_up_rerun_gives_same_totals(fleet: Fleet) -> None:
    fleet.checkin(fleet.device(), at=YESTERDAY)
    checkins_roll_up(now=NOW)

    checkins_roll_up(now=NOW)

    [day] = CheckInDaily.objects.all()
    assert day.checkins == 1


def test_roll_up_counts_apply_failures(fleet: Fleet) -> None:
    fleet.checkin(fleet.device(), at=YESTERDAY, apply_results=((7, False, "KeyError"),))

    checkins_roll_up(now=NOW)

    assert CheckInDaily.objects.get().apply_failures == 1


def test_roll_up_deletes_raw_rows_past_retention(fleet: Fleet) -> None:
    settings_set(checkin_retention_days=3)
    device = fleet.device()
    fleet.checkin(device, at=NOW - dt.timedelta(days=5))
    fleet.checkin(device, at=YESTERDAY)

    deleted = checkins_roll_up(now=NOW)

    assert deleted == 1
    assert list(CheckIn.objects.values_list("received_at", flat=True)) == [YESTERDAY]


def test_seat_usage_snapshot_counts_active_seats(fleet: Fleet) -> None:
    fleet.device()
    fleet.device()
    fleet.device(seat=False)

    seat_usage_snapshot()
    seat_usage_snapshot()

    [row] = SeatUsageDaily.objects.all()
    assert row.day == timezone.now().date()
    assert (row.seats_active, row.seat_count) == (2, 10)
