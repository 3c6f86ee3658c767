"""Test settings: fast hashing, isolated media; services come from the environment as in base."""

import tempfile
from pathlib import Path

from .base import *
from .base import DATABASES, STORAGES

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="test-media-"))
if STORAGES["default"]["BACKEND"].endswith("FileSystemStorage"):
    STORAGES["default"]["OPTIONS"]["location"] = MEDIA_ROOT
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
LOGGING = {"version": 1, "disable_existing_loggers": False}

# Tests run tasks in-process unless a test starts a real worker (tests/core/test_services.py).
CELERY_TASK_ALWAYS_EAGER = True

# Every test client is 127.0.0.1 and a Redis cache outlives the run: with the production limits,
# the failed-token checks of one run would throttle the next. Tests of the limits set their own
# (tests/security/test_throttling.py).
BRUTE_FORCE_LIMITS = {scope: {"failures": 100_000, "window": 60} for scope in ("api_token", "share_link", "login")}

# Tests serve config.asgi from a thread of the test process; Django's request thread there must
# not keep its connection open past a request, or the test database cannot be dropped at the end.
# (MCP tool threads close theirs after every call whatever this says.)
DATABASES["default"]["CONN_MAX_AGE"] = 0
# The test runner renames the database after settings load; a pool opened on the old name would
# outlive the rename. Tests run without the pool (the benchmarks and production use it).
DATABASES["default"].get("OPTIONS", {}).pop("pool", None)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The flush between transactional tests truncates every table; the ledger tables refuse
    # TRUNCATE unless the session allows it (core/ledger_sql.py).
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c ledger.allow_truncate=on"
