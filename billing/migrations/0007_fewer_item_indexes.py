"""Drop four indexes of billing_billingitem that duplicate others (issue 8): every index is
written on each reconciliation insert. contract and project each had two; the client and ticket
foreign-key indexes are the first column of (client, period_month, status) and (ticket,
source_date). The foreign keys change only in the migration state: on SQLite an AlterField would
rebuild the table and lose the immutability triggers of migration 0005, so the database side is
plain DROP INDEX on every backend."""

import django.db.models.deletion
from django.db import migrations, models

DUPLICATE_INDEXES = ("billing_bil_contrac_20d951_idx", "billing_bil_project_c416a3_idx",
                     "billing_billingitem_client_id_24eb7311", "billing_billingitem_ticket_id_586c6f37")
RECREATE = (
    'CREATE INDEX "billing_bil_contrac_20d951_idx" ON "billing_billingitem" ("contract_id")',
    'CREATE INDEX "billing_bil_project_c416a3_idx" ON "billing_billingitem" ("project_id")',
    'CREATE INDEX "billing_billingitem_client_id_24eb7311" ON "billing_billingitem" ("client_id")',
    'CREATE INDEX "billing_billingitem_ticket_id_586c6f37" ON "billing_billingitem" ("ticket_id")',
)


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0006_item_fingerprint"),
        ("tickets", "0002_list_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(f'DROP INDEX IF EXISTS "{name}"', reverse_sql=create)
                for name, create in zip(DUPLICATE_INDEXES, RECREATE, strict=True)
            ],
            state_operations=[
                migrations.RemoveIndex(model_name="billingitem", name="billing_bil_contrac_20d951_idx"),
                migrations.RemoveIndex(model_name="billingitem", name="billing_bil_project_c416a3_idx"),
                migrations.AlterField(
                    model_name="billingitem",
                    name="client",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                            related_name="items", to="billing.client"),
                ),
                migrations.AlterField(
                    model_name="billingitem",
                    name="ticket",
                    field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True,
                                            on_delete=django.db.models.deletion.DO_NOTHING, related_name="+",
                                            to="tickets.ticket"),
                ),
            ],
        ),
    ]
