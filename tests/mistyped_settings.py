"""Live settings with a whitelist setting of the wrong type: servers must refuse to start."""

from tests.live_settings import *  # noqa: F403

WHITELIST_ALLOW_MISSING_ORIGIN = "False"  # a string, and truthy
