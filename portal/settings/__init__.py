"""Keyplane settings: `base` reads the environment; nothing here is a secret."""

from portal.settings.base import *  # noqa: F403
