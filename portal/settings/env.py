"""Typed readers for settings taken from the environment.

Each reader fails loudly with the variable's name instead of returning a
half-usable value. A variable `NAME` can also be given as `NAME_FILE`, a path
whose content is the value, so secrets can come from mounted files.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

# Names of variables whose value fell back to a development default. The
# settings refuse to start with DEBUG off while any secret is in this set.
DEVELOPMENT_DEFAULTS_IN_USE: set[str] = set()


def _raw(name: str) -> str | None:
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ImproperlyConfigured(
                f"{name}_FILE={file_path!r} cannot be read ({error.strerror}); "
                f"point it at a readable file or set {name} instead."
            ) from error
    return os.environ.get(name)


def env_str(name: str, *, default: str | None = None, dev_default: str | None = None) -> str:
    """Return variable `name`; `dev_default` is recorded as a development default."""
    value = _raw(name)
    if value is not None and value != "":
        return value
    if dev_default is not None:
        DEVELOPMENT_DEFAULTS_IN_USE.add(name)
        return dev_default
    if default is not None:
        return default
    raise ImproperlyConfigured(f"The environment variable {name} is required; set it and restart.")


def env_bool(name: str, *, default: bool) -> bool:
    value = _raw(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use 1/0, true/false or yes/no.")


def env_int(name: str, *, default: int, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from error
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum of {minimum}.")
    return number


def env_list(name: str, *, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None or value.strip() == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]
