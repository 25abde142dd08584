"""Project settings plus namespaces that forget the guard, for the live-server tests."""

import os

from guardsite.settings import *  # noqa: F403

GUARDSITE_SOCKETIO_HANDLERS = [*GUARDSITE_SOCKETIO_HANDLERS, "tests.late_namespaces"]  # noqa: F405

# /staffonly (tests.late_namespaces) needs a permission as well as a login.
WHITELIST_PROTECTED_NAMESPACES = {
    **WHITELIST_PROTECTED_NAMESPACES,  # noqa: F405
    "/staffonly": ["whitelist.view_refusedconnect"],
}

# A test server may check protected sockets' users rarely, to prove a logout needs no check.
if os.environ.get("WHITELIST_USER_RECHECK_INTERVAL"):
    WHITELIST_USER_RECHECK_INTERVAL = float(os.environ["WHITELIST_USER_RECHECK_INTERVAL"])
# ... or flush its reports only as it stops, to prove that the last counts are kept.
if os.environ.get("WHITELIST_FLUSH_INTERVAL"):
    WHITELIST_FLUSH_INTERVAL = float(os.environ["WHITELIST_FLUSH_INTERVAL"])

# The live tests refuse by the hundred a second and wait for each answer: no pace unless
# a test sets one (tests/test_refusal_pace.py).
if not os.environ.get("WHITELIST_REFUSAL_RATE"):
    WHITELIST_REFUSAL_RATE = None

# Logins in the live tests: Django's real hasher spends about half a second of the event
# loop per login (a million PBKDF2 rounds), several seconds beside a CPU hog, and one timed
# out at 10 s. What the tests prove does not depend on the hash.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# ... or keep SQLite's own defaults (a rollback journal, deferred transactions, a 5 s
# timeout), as a project that never turned WAL on does (tests/test_database_stalls.py).
if os.environ.get("GUARDSITE_TEST_SQLITE_DEFAULTS"):
    DATABASES["default"]["OPTIONS"] = {}  # noqa: F405
