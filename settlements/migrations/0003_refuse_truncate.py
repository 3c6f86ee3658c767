"""TRUNCATE bypasses the row triggers of 0002: refuse it on the event log (core.ledger_sql)."""

from django.db import migrations

from core.ledger_sql import truncate_guard_operations

forward, backward = truncate_guard_operations(["settlements_settlementevent"])


class Migration(migrations.Migration):
    dependencies = [("settlements", "0002_append_only_events")]

    operations = [migrations.RunPython(forward, backward)]
