"""Settings of the small Django project that serves django-scim2 for userload's interop tests.

Everything that differs between two servers comes from the environment, set by
scripts/django-scim.sh: the PostgreSQL socket folder and port, and the bearer token.
"""

import os

SECRET_KEY = "userload-interop-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "userload_peer.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_scim",
    "userload_peer",
]
AUTH_USER_MODEL = "userload_peer.User"

MIDDLEWARE = ["userload_peer.auth.BearerToken"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "postgres",
        "USER": "userload",
        "HOST": os.environ.get("USERLOAD_PG_SOCKET", ""),
        "PORT": os.environ.get("USERLOAD_PG_PORT", "5432"),
    }
}

SCIM_SERVICE_PROVIDER = {
    "NETLOC": "127.0.0.1",
    "USER_ADAPTER": "userload_peer.adapters.User",
    "USER_FILTER_PARSER": "userload_peer.filters.UserFilter",
    "BASE_LOCATION_GETTER": "userload_peer.adapters.base_location",
    "AUTHENTICATION_SCHEMES": [
        {
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "The token given to scripts/django-scim.sh",
        }
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
