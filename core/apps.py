from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self):
        from django.contrib.auth.signals import user_login_failed

        user_login_failed.connect(count_failed_login, dispatch_uid="core.count_failed_login")


def count_failed_login(sender, credentials, request=None, **kwargs):
    """Failed password sign-ins count against the address (core.throttling), imported when a
    sign-in fails rather than at start-up. Not only for speed: with `redis` imported while Django
    sets up, a Celery worker no longer got the tasks of a killed worker back after the visibility
    timeout (tests/reliability/test_faults.py, the whole-worker test; cause not found)."""
    from .throttling import login_failures

    if request is not None:
        login_failures.fail(request)
