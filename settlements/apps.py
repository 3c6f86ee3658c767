from django.apps import AppConfig


class SettlementsConfig(AppConfig):
    name = "settlements"
    verbose_name = "Settlements"

    def ready(self) -> None:
        from . import guards

        guards.register()
