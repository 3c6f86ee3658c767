"""Production: secrets and hosts must come from the environment; HTTPS hardening on."""

from config.env import env_bool, env_int, env_required

from .base import *
from .base import MIDDLEWARE, STORAGES

DEBUG = False
SECRET_KEY = env_required("DJANGO_SECRET_KEY")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
# Browsers that have seen the site over HTTPS refuse plain HTTP to it for a year (sent only on
# HTTPS responses). 0 turns it off, e.g. while HTTPS is being introduced.
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 365 * 24 * 60 * 60)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
STORAGES["staticfiles"] = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}
# Static files are served by the app itself (whitenoise), right after the security middleware
# (so they get its headers: nosniff, Referrer-Policy, HSTS).
_at = MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1
MIDDLEWARE = [*MIDDLEWARE[:_at], "whitenoise.middleware.WhiteNoiseMiddleware", *MIDDLEWARE[_at:]]
