"""manage.py create_api_token <username> [--name N] [--expires-in-days D]: prints a new token once."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from rbac import services


class Command(BaseCommand):
    help = "Create a personal API token for a user and print it (it is stored only hashed)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="A label for the token.")
        parser.add_argument("--expires-in-days", type=int, default=None, help="Expire after this many days.")

    def handle(self, *args, username: str, name: str, expires_in_days: int | None, **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {username!r}.")
        if expires_in_days is not None and expires_in_days <= 0:
            raise CommandError("--expires-in-days must be positive.")
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        _, plain = services.api_token_create(actor=user, user=user, name=name, expires_at=expires_at)
        self.stdout.write(plain)
