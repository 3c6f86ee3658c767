# Production image. The same image runs every application service of docker-compose.yml:
# uvicorn serving config.asgi (Django and the MCP endpoint, the default CMD), the one-shot
# `migrate`, the Celery worker and Celery beat.
# No HEALTHCHECK here on purpose: worker and beat serve no HTTP; compose checks `web` itself.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Unprivileged runtime user. The code stays owned by root, so the app cannot modify it.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app

# Dependencies first, so code changes do not invalidate this layer.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# Static files are baked into the image and served by WhiteNoise (hashed, compressed).
# The secret below exists only for this build step; the real DJANGO_SECRET_KEY comes from the
# environment at run time. MEDIA_ROOT is writable for deployments without S3.
RUN DJANGO_SETTINGS_MODULE=config.settings.production \
    DJANGO_SECRET_KEY=build-time-dummy-secret-not-used-at-runtime \
    python manage.py collectstatic --noinput \
 && mkdir -p /app/media \
 && chown app:app /app/media

USER app

# uvicorn reads WEB_CONCURRENCY as its worker count and FORWARDED_ALLOW_IPS as the proxies whose
# X-Forwarded-* headers it trusts. The MCP endpoint is stateless, so any worker answers any call.
# (config.wsgi with gunicorn still works for Django alone, without /mcp/.)
ENV DJANGO_SETTINGS_MODULE=config.settings.production \
    WEB_CONCURRENCY=3

EXPOSE 8000

CMD ["uvicorn", "config.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
