"""manage.py load_billing_demo: the billing part of the `make run` demo (idempotent)."""

from django.core.management.base import BaseCommand

from billing.demo import load_billing_demo


class Command(BaseCommand):
    help = "Load demo clients, contracts and a sales line, and reconcile them (skipped if already there)."

    def handle(self, *args, **options):
        created = load_billing_demo()
        self.stdout.write(self.style.SUCCESS("Billing demo data loaded and reconciled.") if created
                          else "Billing demo data already present.")
