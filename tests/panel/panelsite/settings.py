"""Minimal Django site used to look at a collector-written database through
django-log-panel.  Configured only from environment variables:

PANEL_ENGINE    sqlite | postgres | mysql              (default sqlite)
PANEL_DB        SQLite file path, or database name     (required)
PANEL_HOST      default 127.0.0.1
PANEL_PORT      default 5432 (postgres) / 3306 (mysql)
PANEL_USER      default postgres (postgres) / root (mysql)
PANEL_PASSWORD  default empty
PANEL_TZ        Django TIME_ZONE, default UTC
PANEL_PREVIEW   LOG_PANEL MESSAGE_PREVIEW_LENGTH, default 16384
PANEL_CHUNK     LOG_PANEL MESSAGE_CHUNK_SIZE, default 262144

The "default" database (auth, admin, sessions) is a throwaway SQLite file in a
temporary directory that is removed when the process exits; the collector's
database is the "logs" alias.
"""
import atexit
import os
import shutil
import tempfile

from django.core.exceptions import ImproperlyConfigured

ENGINE = os.environ.get("PANEL_ENGINE", "sqlite").strip().lower()
DB_NAME = os.environ.get("PANEL_DB", "")
if not DB_NAME:
    raise ImproperlyConfigured("PANEL_DB is not set (SQLite file path or database name)")

if ENGINE == "sqlite":
    LOGS_DB = {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.abspath(DB_NAME)}
elif ENGINE in ("postgres", "mysql"):
    if ENGINE == "mysql":
        try:
            import MySQLdb  # noqa: F401  (mysqlclient, if installed)
        except ImportError:
            import pymysql

            # Django 6.1 requires mysqlclient >= 2.2.1; PyMySQL reports an old
            # version number for compatibility, so claim a new enough one.
            pymysql.version_info = (2, 2, 7, "final", 0)
            pymysql.install_as_MySQLdb()
    LOGS_DB = {
        "ENGINE": "django.db.backends." + ("postgresql" if ENGINE == "postgres" else "mysql"),
        "NAME": DB_NAME,
        "HOST": os.environ.get("PANEL_HOST", "127.0.0.1"),
        "PORT": int(os.environ.get("PANEL_PORT") or (5432 if ENGINE == "postgres" else 3306)),
        "USER": os.environ.get("PANEL_USER") or ("postgres" if ENGINE == "postgres" else "root"),
        "PASSWORD": os.environ.get("PANEL_PASSWORD", ""),
    }
    if ENGINE == "mysql":
        LOGS_DB["OPTIONS"] = {"charset": "utf8mb4"}
else:
    raise ImproperlyConfigured(f"PANEL_ENGINE must be sqlite, postgres or mysql, not {ENGINE!r}")

_TMP_DIR = tempfile.mkdtemp(prefix="panelcheck-")
atexit.register(shutil.rmtree, _TMP_DIR, ignore_errors=True)

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(_TMP_DIR, "default.sqlite3")},
    "logs": LOGS_DB,
}
DATABASE_ROUTERS = ["log_panel.routers.LogsRouter"]

LOG_PANEL = {
    "DATABASE_ALIAS": "logs",
    "ATTACH_ROOT_HANDLER": False,  # the check itself must never write log rows
    "CACHE_TIMEOUT_SECONDS": None,  # no dashboard cache: every request reads the DB
    "MESSAGE_PREVIEW_LENGTH": int(os.environ.get("PANEL_PREVIEW") or 16384),
    "MESSAGE_CHUNK_SIZE": int(os.environ.get("PANEL_CHUNK") or 262144),
}

SECRET_KEY = "panel-check-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = os.environ.get("PANEL_TZ") or "UTC"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "log_panel",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "panelsite.urls"
STATIC_URL = "/static/"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast superuser login
SILENCED_SYSTEM_CHECKS = ["mysql.W002"]  # strict mode warning about the Django session only
