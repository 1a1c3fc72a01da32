"""Keyplane settings, read from the environment.

Configuration reference: docs/operations.md. Development defaults exist so
that `make run` and `make test` work on a fresh machine. With DEBUG off, the
site refuses to start while any secret still has its development default.
"""

import json
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.settings.env import (
    DEVELOPMENT_DEFAULTS_IN_USE,
    env_bool,
    env_int,
    env_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent
STATE_DIR = BASE_DIR / ".keyplane"


def _development_secret(name: str, length: int) -> str:
    """Return a random development secret kept in .keyplane/dev-secrets.json.

    Generated on first use so that no secret is ever committed; the file is
    git-ignored and readable by its owner only.
    """
    path = STATE_DIR / "dev-secrets.json"
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
    if name not in stored:
        STATE_DIR.mkdir(mode=0o700, exist_ok=True)
        stored[name] = secrets.token_urlsafe(length)
        path.touch(mode=0o600)
        path.write_text(json.dumps(stored, indent=2), encoding="utf-8")
    return stored[name]


DEBUG = env_bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", dev_default="") or _development_secret(
    "DJANGO_SECRET_KEY", 50
)
# Base64 (standard or URL-safe) of 32 random bytes: the key-encryption key
# under which every private signing key is stored (see licensing/keystore.py).
KEYPLANE_KEK = env_str("KEYPLANE_KEK", dev_default="") or _development_secret("KEYPLANE_KEK", 32)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# Behind a TLS-terminating reverse proxy, trust its X-Forwarded-Proto header so
# that absolute URLs (and the `htu` of device proofs) use https. Only enable
# this when the proxy overwrites the header on every request.
if env_bool("KEYPLANE_TRUST_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = env_bool("KEYPLANE_TRUST_FORWARDED_HOST", default=False)

_SECRETS_WITH_DEV_DEFAULTS = {"DJANGO_SECRET_KEY", "KEYPLANE_KEK"}
if not DEBUG and DEVELOPMENT_DEFAULTS_IN_USE & _SECRETS_WITH_DEV_DEFAULTS:
    missing = ", ".join(sorted(DEVELOPMENT_DEFAULTS_IN_USE & _SECRETS_WITH_DEV_DEFAULTS))
    raise ImproperlyConfigured(
        f"DEBUG is off but {missing} still use development defaults; "
        "set them in the environment (or as *_FILE paths) before starting."
    )

# Public URL of this site, used in links sent by e-mail and in token `iss`.
KEYPLANE_BASE_URL = env_str("KEYPLANE_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- Tenancy (django-tenants) -------------------------------------------------

SHARED_APPS = [
    "django_tenants",
    "portal.tenants",
    "portal.catalog",
    "overlays.catalog",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "django.contrib.staticfiles",
    "simple_history",
    "django_celery_beat",
    "rest_framework",
    "drf_spectacular",
    "portal.demo",
    "identity.platform",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.admin",
    "simple_history",
    "portal.access",
    "audit",
    "licensing",
    "overlays",
    "approvals",
    "health",
    "identity",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_URLCONF = "portal.urls_public"
ROOT_URLCONF = "portal.urls_tenant"
# Path prefix of tenant pages and API: /t/<slug>/ (see portal/routing.py).
KEYPLANE_TENANT_PATH_PREFIX = "t"
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]

# Days an offboarded tenant's schema is kept after its export before the drop.
KEYPLANE_OFFBOARDING_RETENTION_DAYS = env_int(
    "KEYPLANE_OFFBOARDING_RETENTION_DAYS", default=30, minimum=0
)
# Folder for per-tenant files (exports, bundles); each tenant gets a subfolder.
KEYPLANE_DATA_DIR = Path(env_str("KEYPLANE_DATA_DIR", default=str(STATE_DIR / "data")))

# --- Audit (see docs/audit.md) --------------------------------------------------

# Default retention of decision-log entries for new tenants, in days; each
# tenant can change its own in the tenant admin (Audit settings).
KEYPLANE_AUDIT_RETENTION_DAYS = env_int("KEYPLANE_AUDIT_RETENTION_DAYS", default=400, minimum=1)
# Milliseconds the per-process chainer waits for more commits before it
# chains pending decisions; one attempt then covers all of them.
KEYPLANE_AUDIT_CHAIN_DELAY_MS = env_int("KEYPLANE_AUDIT_CHAIN_DELAY_MS", default=20, minimum=0)
# Minutes between periodic signed checkpoints of each tenant's chain.
KEYPLANE_AUDIT_CHECKPOINT_MINUTES = env_int(
    "KEYPLANE_AUDIT_CHECKPOINT_MINUTES", default=60, minimum=1
)

# --- Database and cache -------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/keyplane")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        engine="django_tenants.postgresql_backend",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", default=60, minimum=0),
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Send `SET search_path` only when the tenant changes, not before every query:
# it halves the round trips of a request. django-tenants 4 clears the cached
# path on rollback, savepoint rollback and reconnect. This is only correct on
# a direct or session-pooled connection; a transaction-pooling proxy would
# hand the connection's path to another client.
TENANT_LIMIT_SET_CALLS = True

REDIS_URL = env_str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # Every key starts with the current schema name, so one tenant's
        # entries can neither be read nor purged from another tenant.
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "KEY_PREFIX": "kp",
    }
}

SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- Requests -----------------------------------------------------------------

MIDDLEWARE = [
    "portal.request_context.RequestIdMiddleware",
    "portal.input_guard.NulCharacterMiddleware",
    "portal.routing.TenantPathMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.routing.TenantSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Times token issuance and counts refusals for /metrics (see health/metrics.py).
    "health.metrics.ClientMetricsMiddleware",
]
WSGI_APPLICATION = "portal.wsgi.application"
# Client API bodies are small JSON documents; larger ones are rejected early.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("KEYPLANE_MAX_BODY_BYTES", default=64 * 1024, minimum=1024)

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"  # filled by collectstatic in production
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve static files straight from the apps so `make run` needs no collectstatic.
WHITENOISE_USE_FINDERS = True

EMAIL_BACKEND = env_str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", default="keyplane@localhost")

# --- API ----------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.problems.problem_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["portal.input_guard.StrictJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Keyplane API",
    "DESCRIPTION": "Client API for desktop applications and admin API for tenant administrators.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Licensing ----------------------------------------------------------------

# Client API rate limits as (requests, window in seconds) per tenant and
# identity: a client address, a license key (activation) or a device key.
KEYPLANE_CLIENT_RATE_LIMITS = {
    "address": (env_int("KEYPLANE_RATE_PER_ADDRESS", default=300, minimum=1), 60),
    "license": (env_int("KEYPLANE_RATE_PER_LICENSE", default=120, minimum=1), 60),
    "device": (env_int("KEYPLANE_RATE_PER_DEVICE", default=30, minimum=1), 60),
}
# Largest accepted client API request body in bytes.
KEYPLANE_CLIENT_MAX_BODY_BYTES = env_int(
    "KEYPLANE_CLIENT_MAX_BODY_BYTES", default=8192, minimum=512
)

# --- Identity (see docs/identity.md) -------------------------------------------

# Tenant admins sign in with a password (unless their tenant disabled it) or
# through the tenant's OpenID Connect provider; the platform admin keeps the
# password sign-in.
AUTHENTICATION_BACKENDS = [
    "identity.backends.TenantPasswordBackend",
    "identity.backends.OidcSignInBackend",
]
# Failed password sign-ins allowed per tenant, username and client address
# within the window (seconds) before further attempts are locked out until it ends.
KEYPLANE_SIGNIN_MAX_FAILURES = env_int("KEYPLANE_SIGNIN_MAX_FAILURES", default=5, minimum=1)
KEYPLANE_SIGNIN_LOCKOUT_SECONDS = env_int("KEYPLANE_SIGNIN_LOCKOUT_SECONDS", default=900, minimum=1)
# Seconds a provider's discovery document and key set stay cached.
KEYPLANE_OIDC_METADATA_CACHE_SECONDS = env_int(
    "KEYPLANE_OIDC_METADATA_CACHE_SECONDS", default=3600, minimum=0
)

# --- Health ----------------------------------------------------------------------

# When set, GET /metrics needs `Authorization: Bearer <this token>`.
KEYPLANE_METRICS_TOKEN = env_str("KEYPLANE_METRICS_TOKEN", default="")
# Let alert webhooks reach private and loopback addresses (development only).
KEYPLANE_ALERT_WEBHOOK_ALLOW_PRIVATE = env_bool(
    "KEYPLANE_ALERT_WEBHOOK_ALLOW_PRIVATE", default=False
)

# --- Celery -------------------------------------------------------------------

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_DEFAULT_QUEUE = env_str("KEYPLANE_CELERY_QUEUE", default="keyplane")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# --- Logging ------------------------------------------------------------------

LOG_LEVEL = env_str("KEYPLANE_LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_context": {"()": "portal.request_context.RequestContextFilter"},
    },
    "formatters": {
        "keyplane": {
            "format": (
                "%(asctime)s %(levelname)s %(name)s tenant=%(tenant)s "
                "request=%(request_id)s %(message)s"
            ),
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_context"],
            "formatter": "keyplane",
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
    },
}
