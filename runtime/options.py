"""Option checks shared by the client and the worker: durations and positive integers."""

from __future__ import annotations

from datetime import timedelta

from .errors import ConfigurationError

__all__ = ["Duration", "positive_int", "seconds"]

Duration = timedelta | float | int


def seconds(name: str, value: object, *, allow_zero: bool = False) -> float:
    """``value`` (a timedelta or a number of seconds) in seconds, checked to be positive."""
    if isinstance(value, timedelta):
        result = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        result = float(value)
    else:
        raise ConfigurationError(
            f"{name} must be a timedelta or a number of seconds, got {value!r}"
        )
    if result < 0 or (result == 0 and not allow_zero) or result != result:
        raise ConfigurationError(f"{name} must be positive, got {value!r}")
    return result


def positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be an int >= 1, got {value!r}")
    return value
