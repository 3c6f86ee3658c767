"""`manage.py restore_drill --dump FILE [--bucket-dir DIR] [--keep]`: prove a backup restores.

Restores a `pg_dump -Fc` file into a new scratch database next to the configured one, checks that
its schema is this version's (`migrate --check`), that its books are sound (`verify_ledger`), and,
given the bucket backup directory (`mc mirror` layout), that every attachment's object is there;
then drops the scratch database (unless --keep). Exits 1 on any failure. The running database is
never touched."""

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from psycopg import sql

ROOT = Path(settings.BASE_DIR)


def _server() -> dict:
    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        raise CommandError("The restore drill needs PostgreSQL (DATABASE_URL); backups are pg_dump files.")
    return database


def _url(database: dict, name: str) -> str:
    credentials = database["USER"] + (f":{database['PASSWORD']}" if database.get("PASSWORD") else "")
    return f"postgres://{credentials}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/{name}"


class Command(BaseCommand):
    help = "Restore a pg_dump backup into a scratch database and check it (schema, ledger, attachments)."

    def add_arguments(self, parser):
        parser.add_argument("--dump", required=True, type=Path, help="A pg_dump custom-format file (-Fc).")
        parser.add_argument("--bucket-dir", type=Path, help="The bucket backup directory (mc mirror layout).")
        parser.add_argument("--keep", action="store_true", help="Keep the scratch database for a look.")

    def handle(self, *args, dump: Path, bucket_dir: Path | None = None, keep: bool = False, **options):
        if not dump.is_file():
            raise CommandError(f"No dump file at {dump}.")
        database = _server()
        scratch = f"restore_drill_{int(time.time())}_{os.getpid()}"
        self._admin(database, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
        try:
            self._restore(database, scratch, dump)
            self._manage(database, scratch, "migrate", "--check", what="schema is this version's")
            self._manage(database, scratch, "verify_ledger", what="ledger")
            if bucket_dir is not None:
                self._check_objects(database, scratch, bucket_dir)
        finally:
            if keep:
                self.stdout.write(f"Kept the scratch database {scratch}.")
            else:
                drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch))
                self._admin(database, drop)
        self.stdout.write(self.style.SUCCESS("Restore drill passed."))

    def _admin(self, database: dict, statement) -> None:
        with psycopg.connect(_url(database, "postgres"), autocommit=True) as connection:
            connection.execute(statement)

    def _restore(self, database: dict, scratch: str, dump: Path) -> None:
        done = subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", "-d", _url(database, scratch), str(dump)],
                              capture_output=True, text=True)
        if done.returncode:
            raise CommandError(f"pg_restore failed: {done.stderr.strip()[-1000:]}")
        self.stdout.write(f"Restored {dump.name} into {scratch}.")

    def _manage(self, database: dict, scratch: str, *command: str, what: str) -> None:
        env = {**os.environ, "DATABASE_URL": _url(database, scratch), "DATABASE_POOL": "false"}
        done = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True,
                              text=True)
        output = (done.stdout + done.stderr).strip()
        if done.returncode:
            raise CommandError(f"{what}: {' '.join(command)} failed:\n{output[-2000:]}")
        self.stdout.write(f"{what}: ok" + (f" — {output.splitlines()[-1]}" if output else ""))

    def _check_objects(self, database: dict, scratch: str, bucket_dir: Path) -> None:
        with psycopg.connect(_url(database, scratch)) as connection:
            names = [row[0] for row in connection.execute("SELECT file FROM settlements_settlementattachment")]
        missing = [name for name in names if not (bucket_dir / name).is_file()]
        if missing:
            raise CommandError(f"attachments: {len(missing)} of {len(names)} object(s) missing from {bucket_dir}, "
                               f"e.g. {missing[0]}")
        self.stdout.write(f"attachments: ok — {len(names)} object(s) present")
