"""Map a timing slot to a concrete send time in the member's time zone.

The rules are those documented on ``bandit.config.SlotSpec``. A wall-clock
time that falls in a daylight-saving gap moves forward by the length of the
gap: 02:30 becomes 03:30 on the night clocks jump from 02:00 to 03:00. A
wall-clock time that occurs twice, on the night clocks go back, resolves to
its first occurrence.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bandit.config import SlotSpec
from bandit.errors import InvalidInputError

_MAX_DAYS_SEARCHED = 15
"""Days scanned for a slot's send day: the ``weekday`` rule may skip a week after ``days_ahead``."""


def zone_of(time_zone: str | tzinfo) -> tzinfo:
    """Return the tzinfo of an IANA zone name, or a tzinfo unchanged.

    Raises InvalidInputError naming ``time_zone`` when the name is unknown.
    """
    if isinstance(time_zone, tzinfo):
        return time_zone
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidInputError(
            "time_zone",
            f"{time_zone!r} is not a known IANA zone; use a name such as 'Europe/Paris'",
        ) from error


def local_time(day: date, hour: int, minute: int, zone: tzinfo) -> datetime:
    """Return the instant the wall clock of ``zone`` shows ``hour:minute`` on ``day``.

    A wall time skipped by a daylight-saving gap moves forward by the gap's
    length. An ambiguous wall time gets its first occurrence (``fold=0``).
    """
    wall = datetime.combine(day, time(hour, minute), tzinfo=zone)

    # The round trip through UTC normalises a nonexistent wall time: zoneinfo
    # gives it the offset in force before the gap, so 02:30 becomes 03:30.
    return wall.astimezone(UTC).astimezone(zone)


def send_time(slot: SlotSpec, request_time: datetime, time_zone: str | tzinfo) -> datetime:
    """Return the send time of ``slot`` for a request made at ``request_time``.

    With ``slot.offset_minutes`` set, the send time is ``request_time`` plus
    that many minutes of elapsed time. Otherwise it is the first
    ``slot.hour:slot.minute`` in ``time_zone`` that is at or after
    ``request_time``, on a local date at least ``slot.days_ahead`` days after
    the request's local date, and on ``slot.weekday`` (0 = Monday) when set.

    The result is timezone-aware, expressed in ``time_zone``. Raises
    InvalidInputError when ``request_time`` is naive or the zone is unknown.
    """
    if request_time.tzinfo is None or request_time.utcoffset() is None:
        raise InvalidInputError("request_time", f"{request_time.isoformat()} has no time zone; give an aware datetime")
    zone = zone_of(time_zone)

    if slot.offset_minutes is not None:
        sent = request_time.astimezone(UTC) + timedelta(minutes=slot.offset_minutes)
        return sent.astimezone(zone)

    first_day = request_time.astimezone(zone).date() + timedelta(days=slot.days_ahead)
    for days in range(_MAX_DAYS_SEARCHED):
        day = first_day + timedelta(days=days)
        if slot.weekday is not None and day.weekday() != slot.weekday:
            continue
        candidate = local_time(day, slot.hour, slot.minute, zone)
        if candidate >= request_time:
            return candidate

    # Unreachable: within 15 days every weekday occurs twice, and the later one is in the future.
    raise RuntimeError(f"no send time found for slot {slot.name!r} after {request_time.isoformat()}")
