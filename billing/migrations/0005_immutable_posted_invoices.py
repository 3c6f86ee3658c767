"""Posted invoices and their billed items are immutable in the database itself (SPEC §4): even a
raw UPDATE or DELETE through the ORM or SQL fails. The one change allowed is a credit note marking
an invoiced item `credited` (status and updated_at only)."""

from django.db import migrations

ITEM_COLUMNS = ("source_key", "source_type", "source_id", "source_date", "client_id", "contract_id", "project_id",
                "ticket_id", "description", "qty", "unit_price", "total", "currency", "vat_rate", "invoice_id",
                "run_id", "period_month", "period_start", "period_end", "original_item_id", "supersedes_id")

POSTGRES_FORWARD = """
CREATE OR REPLACE FUNCTION billing_refuse_posted_invoice_change() RETURNS trigger AS $$
BEGIN
    IF OLD.status = 'posted' THEN
        RAISE EXCEPTION 'Posted invoice % is immutable; correct it with a credit note.', OLD.number;
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER billing_invoice_immutable BEFORE UPDATE OR DELETE ON billing_invoice
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_posted_invoice_change();

CREATE OR REPLACE FUNCTION billing_refuse_billed_item_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status IN ('invoiced', 'credited') THEN
            RAISE EXCEPTION 'Billing item % is on a posted invoice and cannot be deleted.', OLD.id;
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status = 'credited'
       OR (OLD.status = 'invoiced'
           AND (NEW.status NOT IN ('invoiced', 'credited')
                OR (to_jsonb(NEW) - 'status' - 'updated_at')
                   IS DISTINCT FROM (to_jsonb(OLD) - 'status' - 'updated_at')))
    THEN
        RAISE EXCEPTION 'Billing item % is on a posted invoice and cannot change.', OLD.id;
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER billing_item_immutable BEFORE UPDATE OR DELETE ON billing_billingitem
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_billed_item_change();
"""

POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS billing_item_immutable ON billing_billingitem;
DROP FUNCTION IF EXISTS billing_refuse_billed_item_change();
DROP TRIGGER IF EXISTS billing_invoice_immutable ON billing_invoice;
DROP FUNCTION IF EXISTS billing_refuse_posted_invoice_change();
"""

_ITEM_CHANGED = " OR ".join(f"NEW.{column} IS NOT OLD.{column}" for column in ITEM_COLUMNS)

SQLITE_FORWARD = [
    """CREATE TRIGGER billing_invoice_immutable_update BEFORE UPDATE ON billing_invoice
       WHEN OLD.status = 'posted' BEGIN SELECT RAISE(ABORT, 'Posted invoice is immutable'); END""",
    """CREATE TRIGGER billing_invoice_immutable_delete BEFORE DELETE ON billing_invoice
       WHEN OLD.status = 'posted' BEGIN SELECT RAISE(ABORT, 'Posted invoice is immutable'); END""",
    f"""CREATE TRIGGER billing_item_immutable_update BEFORE UPDATE ON billing_billingitem
       WHEN OLD.status = 'credited' OR (OLD.status = 'invoiced'
            AND (NEW.status NOT IN ('invoiced', 'credited') OR {_ITEM_CHANGED}))
       BEGIN SELECT RAISE(ABORT, 'Billing item on a posted invoice cannot change'); END""",
    """CREATE TRIGGER billing_item_immutable_delete BEFORE DELETE ON billing_billingitem
       WHEN OLD.status IN ('invoiced', 'credited')
       BEGIN SELECT RAISE(ABORT, 'Billing item on a posted invoice cannot be deleted'); END""",
]
SQLITE_BACKWARD = [f"DROP TRIGGER IF EXISTS {name}" for name in (
    "billing_invoice_immutable_update", "billing_invoice_immutable_delete", "billing_item_immutable_update",
    "billing_item_immutable_delete")]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD, params=None)  # literal % in RAISE formats
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("billing", "0004_runs_and_invoices")]

    operations = [migrations.RunPython(forward, backward)]
