"""Maintenance tasks of rbac."""

from celery import shared_task
from django.conf import settings

from . import services


@shared_task
def purge_expired_api_tokens_task() -> int:
    return services.api_tokens_purge_expired(older_than_days=settings.API_TOKEN_PURGE_AFTER_DAYS)
