"""The billing log is append-only in the database (core.ledger_sql)."""

from django.db import migrations

from core.ledger_sql import operations

COLUMNS = ["id", "action", "actor_id", "scope", "item_count", "duration_ms", "summary", "reconciliation_run_id",
           "created_at"]
forward, backward = operations("billing_billinglog", COLUMNS)


class Migration(migrations.Migration):
    dependencies = [("billing", "0007_fewer_item_indexes")]

    operations = [migrations.RunPython(forward, backward)]
