"""μblog settings. Everything that differs between environments comes from environment
variables (the seed's names), so one release folder serves every environment that runs it."""
import os
import tempfile
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_list(name, default):
    value = os.environ.get(name, default)
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG")
# Only for a developer's shell: every environment gets its own {random.secret_key}.
SECRET_KEY = os.environ.get("SECRET_KEY") or "insecure-ublog-development-key"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1")
SOURCE_TAG = os.environ.get("SOURCE_TAG", "dev")

FRONTEND_URL = os.environ.get("FRONTEND_URL", "http://localhost:3000")
# Django 3.2 takes bare host names here; the SPA and the admin share the environment's host.
_frontend_host = urlsplit(FRONTEND_URL).netloc
CSRF_TRUSTED_ORIGINS = [_frontend_host] if _frontend_host else []

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "core",
    "accounts",
    "blog",
]

MIDDLEWARE = [
    # First: answers health checks before host validation, sessions or the database.
    "core.middleware.HealthCheckMiddleware",
    "core.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "backend.urls"
WSGI_APPLICATION = "backend.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("POSTGRES_NAME", "postgres"),
        "USER": os.environ.get("POSTGRES_USERNAME", "postgres"),
        "PASSWORD": os.environ.get("POSTGRES_PASSWORD", "postgres"),
        "HOST": os.environ.get("POSTGRES_SERVICE_HOST", "localhost"),
        "PORT": os.environ.get("POSTGRES_SERVICE_PORT", "5432"),
        # Many environments share one cluster: do not keep idle connections by default.
        "CONN_MAX_AGE": int(os.environ.get("CONN_MAX_AGE", "0")),
        "OPTIONS": {"connect_timeout": 5},
    }
}

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_L10N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Static and media files live outside the (read-only) code: the environment's static folder,
# which adhoc serves at /static/ and /media/ itself.
_scratch = os.path.join(tempfile.gettempdir(), "ublog")
STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("STATIC_ROOT") or os.path.join(_scratch, "static")
MEDIA_URL = "/media/"
MEDIA_ROOT = os.environ.get("MEDIA_ROOT") or os.path.join(_scratch, "media")

REST_FRAMEWORK = {
    # Token first: a token request never needs a CSRF token, even with an admin session cookie.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 10,
}


# --- Redis and Celery --------------------------------------------------------------------
def redis_url(db):
    """The environment's Redis with database `db`: REDIS_URL (its database number replaced)
    if set, else REDIS_SERVICE_HOST / REDIS_SERVICE_PORT / REDIS_PASSWORD."""
    url = os.environ.get("REDIS_URL")
    if url:
        parts = urlsplit(url)
        return urlunsplit((parts.scheme, parts.netloc, "/%d" % db, parts.query, ""))
    host = os.environ.get("REDIS_SERVICE_HOST", "localhost")
    port = os.environ.get("REDIS_SERVICE_PORT", "6379")
    password = os.environ.get("REDIS_PASSWORD", "")
    auth = ":%s@" % password if password else ""
    return "redis://%s%s:%s/%d" % (auth, host, port, db)


CELERY_BROKER_URL = redis_url(1)
CELERY_RESULT_BACKEND = redis_url(2)
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "heartbeat-every-10-seconds": {
        "task": "core.tasks.celery_beat_debug_task",
        "schedule": 10.0,
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": "INFO"},
    "loggers": {"django": {"handlers": ["stderr"], "level": "INFO", "propagate": False}},
}
