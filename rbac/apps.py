from django.apps import AppConfig


class RbacConfig(AppConfig):
    name = "rbac"
    verbose_name = "Access control"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        # Like Django's own permissions, the built-in roles are recreated after every migrate
        # and flush, so no database is ever without them.
        post_migrate.connect(_ensure_builtin_roles, sender=self)


def _ensure_builtin_roles(sender, using="default", **kwargs) -> None:
    from .services import ensure_builtin_roles

    ensure_builtin_roles(using=using)
