"""The site refuses to start with DEBUG off while a development default secret is in use."""

import os
import subprocess
import sys

from tests.conftest import PROJECT_ROOT

_SETUP = "import django; django.setup(); print('started')"


def _start(env_overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SECRET_KEY", "KEYPLANE_KEK"}}
    env.update(DJANGO_SETTINGS_MODULE="portal.settings", **env_overrides)
    return subprocess.run(
        [sys.executable, "-c", _SETUP],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_settings_refuse_debug_off_with_default_secrets() -> None:
    result = _start({"DJANGO_DEBUG": "0"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY, KEYPLANE_KEK still use development defaults" in result.stderr


def test_settings_start_debug_off_with_secrets_set() -> None:
    result = _start(
        {
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "x" * 50,
            "KEYPLANE_KEK": "A" * 43 + "=",
        }
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started"


def test_settings_reject_non_boolean_debug() -> None:
    result = _start({"DJANGO_DEBUG": "maybe"})
    assert "DJANGO_DEBUG='maybe' is not a boolean" in result.stderr
