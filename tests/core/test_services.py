"""The real services behind the settings: a Celery worker on Redis, the Redis cache, and S3
through django-storages. Skipped with a reason when not configured; CI configures all three."""

import os
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.utils import timezone

from rbac import services
from rbac.models import ApiToken
from tests.factories import UserFactory


@pytest.mark.redis
def test_cache_is_redis_when_configured():
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    key = f"probe-{uuid.uuid4()}"
    cache.set(key, {"a": 1}, 30)
    assert cache.get(key) == {"a": 1}
    cache.delete(key)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_celery_worker_on_redis_runs_a_task():
    from celery.contrib.testing.worker import start_worker

    from config.celery import app
    from rbac.tasks import purge_expired_api_tokens_task

    user = UserFactory(username="ann")
    old, _ = services.api_token_create(actor=user, user=user, name="old")
    ApiToken.objects.filter(pk=old.pk).update(revoked_at=timezone.now() - timedelta(days=400))
    assert app.conf.broker_url.startswith("redis://")
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        # A queue of its own: another test run on the same Redis must not take this task.
        queue = f"test-{uuid.uuid4()}"
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30, queues=[queue]):
            result = purge_expired_api_tokens_task.apply_async(queue=queue)
            assert result.get(timeout=30) == 1
    finally:
        app.conf.task_always_eager = eager
    assert not ApiToken.objects.filter(pk=old.pk).exists()


@pytest.mark.s3
def test_default_storage_is_s3_and_streams_large_objects(s3_bucket):
    from django.core.files.storage import default_storage

    assert default_storage.__class__.__name__ == "S3Storage"
    assert default_storage.bucket_name == s3_bucket
    # A non-zero spool size: opening an object must not read it whole into memory.
    assert default_storage.max_memory_size > 0
    payload = os.urandom(3 * 1024 * 1024 + 17)
    name = default_storage.save(f"probe/{uuid.uuid4()}.bin", ContentFile(payload))
    try:
        assert default_storage.exists(name) and default_storage.size(name) == len(payload)
        received = bytearray()
        with default_storage.open(name, "rb") as handle:
            for chunk in handle.chunks(chunk_size=256 * 1024):
                received.extend(chunk)
        assert bytes(received) == payload
    finally:
        default_storage.delete(name)
    assert not default_storage.exists(name)
