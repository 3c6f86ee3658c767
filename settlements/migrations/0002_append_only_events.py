"""Settlement events are append-only in the database (core.ledger_sql)."""

from django.db import migrations

from core.ledger_sql import operations

COLUMNS = ["id", "settlement_id", "kind", "actor_id", "actor_label", "created_at", "before", "after"]
forward, backward = operations("settlements_settlementevent", COLUMNS)


class Migration(migrations.Migration):
    dependencies = [("settlements", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
