"""manage.py load_demo_data: the demo installation of `make run` (idempotent)."""

import os

from django.core.management.base import BaseCommand

from tickets.demo import DEMO_PASSWORD, PEOPLE, load_demo_data


class Command(BaseCommand):
    help = "Load demo projects, users, tickets, time entries and expenses (skipped if already there)."

    def handle(self, *args, **options):
        admin_password = os.environ.get("DEMO_ADMIN_PASSWORD", "admin")
        created = load_demo_data(admin_password=admin_password)
        self.stdout.write(self.style.SUCCESS("Demo data loaded.") if created else "Demo data already present.")
        self.stdout.write(
            "\n  Admin login:  http://127.0.0.1:8000/admin/   user: admin   password: "
            f"{admin_password}  (set DEMO_ADMIN_PASSWORD to choose another on a fresh database)\n"
            f"  Other users:  {', '.join(PEOPLE)}, bella (billing)   password: {DEMO_PASSWORD}\n"
        )
