"""TRUNCATE bypasses the row triggers of 0005 and 0008: refuse it on the ledger tables (core.ledger_sql)."""

from django.db import migrations

from core.ledger_sql import truncate_guard_operations

forward, backward = truncate_guard_operations(["billing_invoice", "billing_billingitem", "billing_billinglog"])


class Migration(migrations.Migration):
    dependencies = [("billing", "0008_append_only_log")]

    operations = [migrations.RunPython(forward, backward)]
