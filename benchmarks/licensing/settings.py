"""Settings of the benchmark server: the normal settings plus the baseline endpoint's URL conf."""

from portal.settings.base import *  # noqa: F403

ROOT_URLCONF = "benchmarks.licensing.urls"
