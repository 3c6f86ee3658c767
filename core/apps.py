from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self):
        from django.contrib.auth.signals import user_login_failed

        user_login_failed.connect(count_failed_login, dispatch_uid="core.count_failed_login")


def count_failed_login(sender, credentials, request=None, **kwargs):
    """Failed password sign-ins count against the address (core.throttling), imported when a
    sign-in fails rather than at start-up: workers and management commands never sign in."""
    from .throttling import login_failures

    if request is not None:
        login_failures.fail(request)
