"""Django settings for Guardsite.

Every value that differs between a laptop and production comes from the
environment, with a development default that is safe on a loopback address.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    """Read a yes/no environment variable; anything unrecognised is an error."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name}={value!r} is not a yes/no value")


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    return default if value is None else [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", True)
# The development key is public; `manage.py check --deploy` flags it.
SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "django-insecure-guardsite-development-key-do-not-use-in-production"
)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "whitelist",
    "guardsite",
]

MIDDLEWARE = [
    # First: every query of a request runs off eventlet's loop (see its docstring).
    "whitelist.middleware.DatabaseOffTheLoopMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "guardsite.urls"
WSGI_APPLICATION = "guardsite.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=0, conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the server read the rules while another process writes them.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }

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

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# The official Socket.IO browser client, installed from npm (package.json).
STATICFILES_DIRS = [("socket.io-client", BASE_DIR / "node_modules" / "socket.io-client" / "dist")]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOG_LEVEL = os.environ.get("GUARDSITE_LOG_LEVEL", "INFO")
LOG_FORMAT = os.environ.get("GUARDSITE_LOG_FORMAT", "plain")
if LOG_FORMAT not in {"plain", "json"}:
    raise ValueError(f"GUARDSITE_LOG_FORMAT={LOG_FORMAT!r}: use plain or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Both write what clients sent (origins, addresses, session ids, request lines)
    # escaped, in every message of every logger below: no client byte starts a line.
    "formatters": {
        "plain": {
            "class": "whitelist.plainlog.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        },
        # One JSON object per line, with each decision's fields (GUARDSITE_LOG_FORMAT=json).
        "json": {"()": "whitelist.jsonlog.JSONFormatter"},
    },
    "filters": {"without_traceback": {"()": "guardsite.logfilters.WithoutTraceback"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT},
        "console_one_line": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["without_traceback"],
        },
    },
    "loggers": {
        "guardsite": {"handlers": ["console"], "level": LOG_LEVEL},
        "whitelist": {"handlers": ["console"], "level": LOG_LEVEL},
        # python-engineio and python-socketio at their own default level, but through
        # these handlers: left unconfigured, each adds a bare StreamHandler of its own.
        "engineio.server": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        "socketio.server": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        # runsocket --access-log (guardsite/serving/eventlet_server.py): eventlet's request lines.
        "eventlet.wsgi.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # One line per request with a bad Host header, not a traceback each.
        "django.security.DisallowedHost": {
            "handlers": ["console_one_line"],
            "level": "ERROR",
            "propagate": False,
        },
    },
}

# Socket.IO server (guardsite/sockets.py) and runsocket (guardsite/serving/).
GUARDSITE_SOCKETIO_HANDLERS = ["guardsite.events"]
# eventlet (runsocket, gunicorn's eventlet worker), gevent (runsocket, gunicorn's gevent worker)
# or threading (gunicorn's gthread worker); runsocket reads it from the environment.
GUARDSITE_SOCKETIO_ASYNC_MODE = os.environ.get("GUARDSITE_SOCKETIO_ASYNC_MODE", "eventlet")
if GUARDSITE_SOCKETIO_ASYNC_MODE not in {"eventlet", "gevent", "threading"}:
    raise ValueError(f"GUARDSITE_SOCKETIO_ASYNC_MODE={GUARDSITE_SOCKETIO_ASYNC_MODE!r}")
# redis://host:port/db: every server process shares emits through python-socketio's
# Redis manager, and guardsite.messaging.emit() reaches their clients from anywhere.
GUARDSITE_MESSAGE_QUEUE = os.environ.get("GUARDSITE_MESSAGE_QUEUE") or None
GUARDSITE_MAX_CONNECTIONS = int(os.environ.get("GUARDSITE_MAX_CONNECTIONS", "10000"))
GUARDSITE_LISTEN_BACKLOG = int(os.environ.get("GUARDSITE_LISTEN_BACKLOG", "2048"))
# runsocket closes a connection silent this long (no TLS handshake, half a request,
# idle between requests). Keep it above Engine.IO's ping interval plus timeout (45 s).
GUARDSITE_SOCKET_TIMEOUT = float(os.environ.get("GUARDSITE_SOCKET_TIMEOUT") or 60)
# runsocket closes a connection whose request line and headers are not complete this
# many seconds after the request began (at the accept, TLS handshake included, for a
# connection's first request): a slowloris client sends a header line now and then.
GUARDSITE_REQUEST_HEAD_TIMEOUT = float(os.environ.get("GUARDSITE_REQUEST_HEAD_TIMEOUT") or 20)
# runsocket's cap on open connections from one peer address (an IPv6 /64), so that one
# address cannot hold the pool; a peer in WHITELIST_TRUSTED_PROXIES is not capped (cap
# per client at the proxy: deploy/nginx.conf's limit_conn).
GUARDSITE_MAX_CONNECTIONS_PER_ADDRESS = int(
    os.environ.get("GUARDSITE_MAX_CONNECTIONS_PER_ADDRESS") or 100
)
# Git-ignored state: the development TLS certificate lives in STATE_DIR/tls.
GUARDSITE_STATE_DIR = Path(os.environ.get("GUARDSITE_STATE_DIR", BASE_DIR / "var"))
# A real certificate for runsocket --tls and gunicorn.conf.py (else the development one).
GUARDSITE_TLS_CERT = os.environ.get("GUARDSITE_TLS_CERT") or None
GUARDSITE_TLS_KEY = os.environ.get("GUARDSITE_TLS_KEY") or None
GUARDSITE_TLS_CHAIN = os.environ.get("GUARDSITE_TLS_CHAIN") or None

# The allowlist (whitelist/conf.py documents each setting and its default).
# Rule changes are pushed to every server on the message queue's Redis, if any.
WHITELIST_CHANGES_URL = GUARDSITE_MESSAGE_QUEUE
if os.environ.get("WHITELIST_REFRESH_INTERVAL"):
    WHITELIST_REFRESH_INTERVAL = float(os.environ["WHITELIST_REFRESH_INTERVAL"])
if os.environ.get("WHITELIST_CONNECT_TIMEOUT"):
    WHITELIST_CONNECT_TIMEOUT = float(os.environ["WHITELIST_CONNECT_TIMEOUT"])
WHITELIST_ALLOW_MISSING_ORIGIN = env_bool("WHITELIST_ALLOW_MISSING_ORIGIN", False)
WHITELIST_REFUSE_AT_HANDSHAKE = env_bool("WHITELIST_REFUSE_AT_HANDSHAKE", False)
WHITELIST_REQUIRE_SECURE = env_bool("WHITELIST_REQUIRE_SECURE", False)
# Handshakes per second and at once from one client address (HTTP 429 beyond);
# WHITELIST_CONNECT_RATE=off for no limit. Behind proxies that append to
# X-Forwarded-For (deploy/nginx.conf does), WHITELIST_PROXY_COUNT says how many,
# and WHITELIST_TRUSTED_PROXIES (comma-separated addresses or networks) which peers
# may send the header, so that the limit counts clients, not the proxy; from any
# other peer the header is ignored.
if os.environ.get("WHITELIST_CONNECT_RATE"):
    rate = os.environ["WHITELIST_CONNECT_RATE"]
    WHITELIST_CONNECT_RATE = None if rate.lower() == "off" else float(rate)
# Refusals of unlisted origins a second, past which each waits its turn (off: none waits).
if os.environ.get("WHITELIST_REFUSAL_RATE"):
    refusals = os.environ["WHITELIST_REFUSAL_RATE"]
    WHITELIST_REFUSAL_RATE = None if refusals.lower() == "off" else float(refusals)
if os.environ.get("WHITELIST_CONNECT_BURST"):
    WHITELIST_CONNECT_BURST = float(os.environ["WHITELIST_CONNECT_BURST"])
WHITELIST_PROXY_COUNT = int(os.environ.get("WHITELIST_PROXY_COUNT") or 0)
WHITELIST_TRUSTED_PROXIES = env_list("WHITELIST_TRUSTED_PROXIES", [])
# /metrics answers only a scraper sending "Authorization: Bearer <token>"; unset, no metrics.
WHITELIST_METRICS_TOKEN = os.environ.get("WHITELIST_METRICS_TOKEN") or None
# Only for a scraper on a private network: /metrics without a token (check --deploy warns).
WHITELIST_METRICS_PUBLIC = env_bool("WHITELIST_METRICS_PUBLIC", False)
# Roll out an allowlist: would-be refusals are logged and recorded, and admitted.
WHITELIST_REPORT_ONLY = env_bool("WHITELIST_REPORT_ONLY", False)
# Refused connects recorded in the database (admin: Refused connects); off: logs only.
WHITELIST_REFUSAL_LOG = env_bool("WHITELIST_REFUSAL_LOG", True)
# The demo's /account namespace: logged-in Django users only (whitelist.server.users).
WHITELIST_PROTECTED_NAMESPACES = {"/account": []}
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto, opt in with
# DJANGO_TRUST_X_FORWARDED_PROTO=1; never trusted otherwise.
TRUST_X_FORWARDED_PROTO = env_bool("DJANGO_TRUST_X_FORWARDED_PROTO", False)
if TRUST_X_FORWARDED_PROTO:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# HTTPS for Django's pages (manage.py check --deploy asks for these). On by default
# only when DEBUG is off and the site is known to be served over TLS (gunicorn's own
# GUARDSITE_TLS, or a proxy trusted for X-Forwarded-Proto): over plain HTTP they would
# lock staff out of admin. HSTS is never on by default: browsers remember it.
# gunicorn.conf.py serves HTTPS/WSS itself with GUARDSITE_TLS=1 (runsocket takes --tls).
GUARDSITE_TLS = env_bool("GUARDSITE_TLS", False)
SERVED_OVER_TLS = GUARDSITE_TLS or TRUST_X_FORWARDED_PROTO
HTTPS_BY_DEFAULT = not DEBUG and SERVED_OVER_TLS
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", HTTPS_BY_DEFAULT)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", HTTPS_BY_DEFAULT)
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS") or 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
# Origins (scheme://host[:port]) of forms posted to this site, beyond its own host.
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
