"""manage.py load_settlements_demo: the settlements part of the `make run` demo (idempotent)."""

from django.core.management.base import BaseCommand

from settlements.demo import load_settlements_demo


class Command(BaseCommand):
    help = "Create a draft and a sent demo settlement with a share link (skipped if settlements exist)."

    def handle(self, *args, **options):
        share_path = load_settlements_demo()
        if share_path is None:
            self.stdout.write("Settlement demo data already present (or the base demo is missing).")
        else:
            self.stdout.write(self.style.SUCCESS(f"Demo settlements created. Customer page: {share_path}"))
