"""Settings shared by every environment; each value can be overridden from the environment.

The embedded default (no variables set) is SQLite, local file storage and in-process tasks.
Setting DATABASE_URL, REDIS_URL or S3_ENDPOINT_URL/S3_BUCKET switches to the real services.
"""

from pathlib import Path

import dj_database_url
from celery.schedules import crontab

from config.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent

SECRET_KEY = env_str("DJANGO_SECRET_KEY", "insecure-local-development-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "guardian",
    "django_htmx",
    "core",
    "rbac",
    "tickets",
    "billing",
    "settlements",
]

MIDDLEWARE = [
    "core.middleware.limit_request_size",
    "core.middleware.reject_nul_bytes",
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.content_security_policy",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "core.middleware.htmx_refusals",
    "core.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.navigation",
            ],
        },
    },
]

# --- Database: SQLite by default, PostgreSQL (or anything dj-database-url reads) via DATABASE_URL.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        # A connection kept from an earlier request (persistent, or in the pool) is checked before
        # it is reused: after a database restart or failover requests reconnect instead of failing.
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DATABASE_POOL", True):
    # Under ASGI (uvicorn, /mcp/) every request runs in a thread of its own, so a persistent
    # connection is never reused and each request would connect anew (~7 ms here); a pool serves
    # WSGI, ASGI and Celery alike. Django requires CONN_MAX_AGE 0 with a pool.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("DATABASE_POOL_MIN_SIZE", 2),
        "max_size": env_int("DATABASE_POOL_MAX_SIZE", 10),
        "timeout": env_int("DATABASE_POOL_TIMEOUT", 10),
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Writers take the lock when their transaction begins, so concurrent requests queue instead
    # of failing with "database is locked" (SQLite ignores select_for_update).
    DATABASES["default"].setdefault("OPTIONS", {})["transaction_mode"] = "IMMEDIATE"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # Django's ModelBackend, refusing addresses with too many failed sign-ins.
    "core.throttling.ThrottledModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# Guardian's anonymous user is not used: anonymous requests never see project data.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# --- Internationalisation: English, Polish, Norwegian Bokmål. Datetimes stored in UTC.
LANGUAGE_CODE = env_str("DJANGO_LANGUAGE_CODE", "en")
LANGUAGES = [("en", "English"), ("pl", "Polski"), ("nb", "Norsk bokmål")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("DJANGO_TIME_ZONE", "Europe/Oslo")
USE_I18N = True
USE_TZ = True

# --- Static and uploaded files. STORAGES["default"] is S3 when a bucket is configured.
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Our own CSS/JS and vendored front-end libraries (htmx from its npm package); no CDN at runtime.
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))

S3_ENDPOINT_URL = env_str("S3_ENDPOINT_URL")
S3_BUCKET = env_str("S3_BUCKET", "settlements" if S3_ENDPOINT_URL else None)
if S3_BUCKET:
    from boto3.s3.transfer import TransferConfig

    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": S3_ENDPOINT_URL,
            "access_key": env_str("S3_ACCESS_KEY_ID"),
            "secret_key": env_str("S3_SECRET_ACCESS_KEY"),
            "region_name": env_str("S3_REGION", "us-east-1"),
            "addressing_style": "path",
            "signature_version": "s3v4",
            "file_overwrite": False,
            "default_acl": None,
            "querystring_auth": True,
            # A non-zero spool size keeps open() from reading whole objects into memory.
            "max_memory_size": env_int("S3_MAX_MEMORY_SIZE", 8 * 1024 * 1024),
            # Multipart uploads hold concurrency × chunk size in memory: bound it (boto3's
            # default, 10 × 8 MB, would buffer most of a large attachment).
            "transfer_config": TransferConfig(
                multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024,
                max_concurrency=env_int("S3_UPLOAD_CONCURRENCY", 2), max_io_queue=4,
            ),
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Cache: Redis when configured, local memory otherwise.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    # Short socket timeouts: the brute-force counters live here and fail open when Redis is gone
    # (core.throttling); an unreachable host must not hold each request for redis-py's 5 s.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery: a Redis broker when configured; without one, tasks run in-process.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL or "cache+memory://")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
# A task whose worker process dies under it (SIGKILL, OOM) goes back to the queue instead of being
# acknowledged as failed: billing tasks are idempotent, so the rerun only finishes the work.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A task taken by a worker that died as a whole (no parent left to requeue it) is handed out again
# once it has been unacknowledged this long (seconds); keep it above the longest task's runtime.
# Workers look for such tasks at start and then every CELERY_RESTORE_INTERVAL seconds (kombu's
# default throttle would make that every tenth sweep, about 100 s; one ZRANGE a sweep is cheap).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
    "unacked_restore_interval": env_int("CELERY_RESTORE_INTERVAL", 10),
    "unacked_restore_throttle": 1,
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "purge-expired-api-tokens": {
        "task": "rbac.tasks.purge_expired_api_tokens_task",
        "schedule": 24 * 60 * 60,
    },
    # Works off on-save reconciliation requests that a lost task or a broker outage left behind.
    "drain-reconciliation-requests": {
        "task": "billing.tasks.drain_reconciliation_requests_task",
        "schedule": env_int("BILLING_DRAIN_INTERVAL_SECONDS", 60),
    },
    # The nightly safety net of immediate-on-save mode (skipped when that mode is off).
    "nightly-reconciliation": {
        "task": "billing.tasks.scheduled_reconciliation_task",
        "schedule": crontab(hour=env_int("BILLING_NIGHTLY_HOUR_UTC", 2), minute=0),
    },
}

# --- REST API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rbac.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "core.api.exceptions.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # Rate limits (the share-link API's) key on REMOTE_ADDR, never on X-Forwarded-For as sent:
    # anyone can send that header. Behind a proxy, uvicorn --proxy-headers sets REMOTE_ADDR from
    # the trusted proxy's header (see docs/OPERATIONS.md, "HTTPS").
    "NUM_PROXIES": 0,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Settlements & Billing API",
    "DESCRIPTION": (
        "Projects, tickets, time and expenses with per-project permissions; settlements and "
        "billing. Authenticate with `Authorization: Bearer <token>` (personal API token) or a "
        "browser session. Errors carry a machine-readable `code`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "TicketStatusEnum": "tickets.choices.TicketStatus",
        "TicketPriorityEnum": "tickets.choices.TicketPriority",
        "ActivityEnum": "tickets.choices.Activity",
        "CurrencyEnum": "tickets.models.CURRENCY_CHOICES",
        "SettlementStatusEnum": "settlements.choices.SettlementStatus",
        "BillingItemStatusEnum": "billing.choices.ItemStatus",
        "BillingSourceTypeEnum": "billing.choices.SourceType",
        "UnmatchedReasonEnum": "billing.choices.UnmatchedReason",
        "ReconciliationTriggerEnum": "billing.choices.RunTrigger",
        "ReconciliationStatusEnum": "billing.choices.RunStatus",
        "BillingLogActionEnum": "billing.choices.LogAction",
        "BillingRunStatusEnum": "billing.models.BillingRun.Status",
        "InvoiceStatusEnum": "billing.models.Invoice.Status",
        "InvoiceKindEnum": "billing.models.Invoice.Kind",
    },
}

# --- Product settings
API_TOKEN_PURGE_AFTER_DAYS = env_int("API_TOKEN_PURGE_AFTER_DAYS", 90)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # One line per finished task is noise in-process (eager tasks); workers log their own.
    "loggers": {"celery.app.trace": {"level": "WARNING"}},
}
SETTLEMENT_NUMBER_PREFIX = env_str("SETTLEMENT_NUMBER_PREFIX", "ROZ")
# Who issues the invoices: printed on invoice and credit note PDFs (left out while the name is empty).
BILLING_COMPANY = {
    "name": env_str("BILLING_COMPANY_NAME", ""),
    "org_number": env_str("BILLING_COMPANY_ORG_NUMBER", ""),
    "address": env_str("BILLING_COMPANY_ADDRESS", ""),
    "email": env_str("BILLING_COMPANY_EMAIL", ""),
}
SETTLEMENT_ATTACHMENT_MAX_BYTES = env_int("SETTLEMENT_ATTACHMENT_MAX_BYTES", 200 * 1024 * 1024)
SETTLEMENT_ATTACHMENT_MAX_FILES = env_int("SETTLEMENT_ATTACHMENT_MAX_FILES", 10)
# Brute-force protection (core.throttling): after `failures` failed guesses of an API token or a
# share-link token from one client address within a `window` (seconds), that address gets 429
# until the window ends. Counted in the cache: use Redis (REDIS_URL) with several processes.
BRUTE_FORCE_LIMITS = {
    "api_token": {"failures": env_int("API_TOKEN_FAILURE_LIMIT", 20),
                  "window": env_int("API_TOKEN_FAILURE_WINDOW_SECONDS", 600)},
    "share_link": {"failures": env_int("SHARE_LINK_FAILURE_LIMIT", 20),
                   "window": env_int("SHARE_LINK_FAILURE_WINDOW_SECONDS", 600)},
    "login": {"failures": env_int("LOGIN_FAILURE_LIMIT", 10), "window": env_int("LOGIN_FAILURE_WINDOW_SECONDS", 900)},
}

# MCP server (config/mcp.py). Attachments travel as base64 inside JSON-RPC and are held in memory
# whole, so the MCP cap is lower than the file limit; larger files go through the REST upload.
MCP_ATTACHMENT_MAX_BYTES = min(env_int("MCP_ATTACHMENT_MAX_BYTES", 20 * 1024 * 1024), SETTLEMENT_ATTACHMENT_MAX_BYTES)
# Host headers /mcp/ answers (DNS-rebinding protection); defaults to Django's ALLOWED_HOSTS.
MCP_ALLOWED_HOSTS = env_list("MCP_ALLOWED_HOSTS", ",".join(ALLOWED_HOSTS))
# Uploads larger than this are spooled to disk while the request is parsed, never kept in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_HANDLERS = [
    "core.uploads.SizeLimitedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
