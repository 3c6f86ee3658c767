"""Append-only tables in the database (issue 9, tamper-proof ledger): the SQL that makes a table
refuse UPDATE and DELETE, shared by the migrations of the apps that own such tables.

One exception: a row's `actor_id` may be set to NULL (the user was deleted; the row keeps its
actor label or summary). On SQLite, the embedded default, only updates are refused: Django's
test flush deletes rows one by one there (PostgreSQL truncates, which row triggers do not see).

Row triggers do not fire on TRUNCATE, so on PostgreSQL the ledger tables also carry a statement
trigger refusing it, unless the session has set `ledger.allow_truncate = on`. Only the test
settings set it (their flush between tests truncates every table); `manage.py flush` against a
production database is refused."""

POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.actor_id IS NULL
       AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
        RETURN NEW;  -- the actor was deleted (ON DELETE SET NULL)
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END $$ LANGUAGE plpgsql;
"""


def postgres_forward(table: str) -> str:
    return (POSTGRES_FUNCTION + f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();")


def postgres_backward(table: str) -> str:
    return f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};"


def sqlite_forward(table: str, columns: list[str]) -> str:
    changed = " OR ".join(f'NEW."{column}" IS NOT OLD."{column}"' for column in columns if column != "actor_id")
    return (f"CREATE TRIGGER {table}_append_only BEFORE UPDATE ON {table} "
            f"WHEN {changed} OR NEW.actor_id IS NOT NULL AND NEW.actor_id IS NOT OLD.actor_id "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")


def sqlite_backward(table: str) -> str:
    return f"DROP TRIGGER IF EXISTS {table}_append_only"


def operations(table: str, columns: list[str]):
    """The RunPython pair for a migration making `table` append-only."""

    def forward(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        if vendor == "postgresql":
            schema_editor.execute(postgres_forward(table), params=None)
        elif vendor == "sqlite":
            schema_editor.execute(sqlite_forward(table, columns))

    def backward(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        if vendor == "postgresql":
            schema_editor.execute(postgres_backward(table), params=None)
        elif vendor == "sqlite":
            schema_editor.execute(sqlite_backward(table))

    return forward, backward


TRUNCATE_FUNCTION = """
CREATE OR REPLACE FUNCTION ledger_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF coalesce(current_setting('ledger.allow_truncate', true), '') = 'on' THEN
        RETURN NULL;  -- the test suite's flush (config/settings/test.py)
    END IF;
    RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME;
END $$ LANGUAGE plpgsql;
"""


def truncate_guard_operations(tables: list[str]):
    """The RunPython pair for a migration refusing TRUNCATE on `tables` (PostgreSQL only: SQLite
    has no TRUNCATE)."""

    def forward(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        schema_editor.execute(TRUNCATE_FUNCTION, params=None)
        for table in tables:
            schema_editor.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                                  f"FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_truncate();", params=None)

    def backward(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for table in tables:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};", params=None)

    return forward, backward
