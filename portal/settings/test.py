"""Settings for the test suite: the base settings plus test-run isolation.

`KEYPLANE_TEST_RUN_ID` (set by the test run and passed to the worker
processes it starts) gives each run its own Celery queue and cache prefix,
so parallel runs against the same Redis never consume each other's tasks.
"""

import os

from portal.settings.base import *  # noqa: F403
from portal.settings.base import CACHES

TEST_RUN_ID = os.environ.setdefault("KEYPLANE_TEST_RUN_ID", str(os.getpid()))

# Tests create many users; the default hasher's cost buys nothing here.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_DEFAULT_QUEUE = f"keyplane-test-{TEST_RUN_ID}"
CACHES["default"]["KEY_PREFIX"] = f"kp-test-{TEST_RUN_ID}"
