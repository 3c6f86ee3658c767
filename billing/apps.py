from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from tickets.signals import ticket_record_changed

        from . import budgets, guards, triggers

        guards.register()
        budgets.register()
        ticket_record_changed.connect(triggers.on_ticket_record_changed, dispatch_uid="billing.reconcile_on_save")
