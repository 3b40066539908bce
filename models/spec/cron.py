"""Cron expressions of ``schedules``, checked with ``cronsim``; this module only restricts the
dialect to what Prefect's deployments accept and words the error so that it names the bad part."""

from __future__ import annotations

from datetime import datetime

from cronsim import CronSim, CronSimError

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

_FIELDS = (
    ("minute", "0-59", ()),
    ("hour", "0-23", ()),
    ("day of month", "1-31", ()),
    ("month", "1-12", _MONTHS),
    ("day of week", "0-7", _DAYS),
)
"""Each field's name, range and names, for the error messages (``cronsim`` checks the values)."""

_START = datetime(2000, 1, 1)


def _fires(expression: str) -> bool:
    try:
        CronSim(expression, _START)
    except CronSimError:
        return False
    return True


def _alone(index: int, item: str) -> str:
    """A five-field expression with ``item`` in field ``index`` and ``*`` everywhere else."""
    parts = ["*"] * 5
    parts[index] = item
    return " ".join(parts)


def _item_problem(index: int, item: str, expression: str) -> str | None:
    """What is wrong with one comma-separated item of a field, or None when it is valid."""
    what, allowed, names = _FIELDS[index]
    base, slash, step = item.partition("/")
    if slash and not (step.isdigit() and int(step) >= 1):
        return f"{what} step {step!r} in {expression!r} is not a positive number"
    ends = [] if base == "*" else base.split("-", 1)
    for end in ends:
        # Plain numbers and names only: cronsim also reads L, W and #, which Prefect's cron
        # schedules do not all accept.
        if not (end.isdigit() or end.lower() in names) or not _fires(_alone(index, end)):
            return f"{what} {end!r} is outside {allowed}"
    if not _fires(_alone(index, item)):
        return f"{what} range {base!r} in {expression!r} runs backwards"
    return None


def check_cron(expression: str) -> str:
    """Validate a five-field cron expression (``*``, lists, ranges, steps, month and day names).

    ``cronsim`` decides what is valid, including an expression that never fires ("0 3 31 2 *",
    31 February); with both the day of month and the day of week restricted, cron fires on
    either (POSIX crontab), so "0 3 31 2 mon" is valid.

    Returns:
        ``expression`` unchanged.

    Raises:
        ValueError: naming the field and the bad part, e.g. "minute '61' is outside 0-59".
    """
    parts = expression.split()
    if len(parts) != 5:
        raise ValueError(f"{expression!r} is not a five-field cron expression (minute hour day month weekday)")
    for index, part in enumerate(parts):
        for item in part.split(","):
            problem = _item_problem(index, item, expression)
            if problem:
                raise ValueError(problem)
    if not _fires(expression):
        # Every field is valid alone, so the days of the month exist in none of the months.
        days = sorted(d for d in CronSim(_alone(2, parts[2]), _START).days if d > 0)
        raise ValueError(f"{expression!r} never fires: no month it names has day(s) {days}")
    return expression
