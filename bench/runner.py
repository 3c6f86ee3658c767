"""What every benchmark uses: the datasets of a scale (generated once into template databases),
fresh copies of them, product operations in worker processes, timed SQL, and the measurement
records the report is written from."""

import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import dataset, pg

ROOT = Path(__file__).resolve().parent.parent


def dataset_version() -> str:
    """Changes with the generator and with every migration, so a template database made by an
    older version is never reused."""
    digest = hashlib.sha1((ROOT / "bench" / "dataset.py").read_bytes())
    for migration in sorted(ROOT.glob("*/migrations/0*.py")):
        digest.update(migration.name.encode())
    return digest.hexdigest()[:8]


@dataclass
class Measurement:
    """One benchmark at one scale: the product's figure and its baseline's, one value per run.
    `higher_is_better`: throughputs (invoices/s, req/s); otherwise times in seconds."""

    key: str
    title: str
    unit: str
    values: list[float]
    baseline: list[float] | None = None
    baseline_title: str = ""
    higher_is_better: bool = False
    target: str = ""
    # The bound the ratio must meet: ratio <= bound for times, ratio >= bound for throughputs.
    ratio_bound: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def baseline_median(self) -> float | None:
        return statistics.median(self.baseline) if self.baseline else None

    @property
    def ratio(self) -> float | None:
        if not self.baseline_median:
            return None
        return self.median / self.baseline_median

    @property
    def met(self) -> bool | None:
        checks = self.extra.get("checks", {})
        if self.ratio_bound is None or self.ratio is None:
            return all(checks.values()) if checks else None
        within = self.ratio >= self.ratio_bound if self.higher_is_better else self.ratio <= self.ratio_bound
        return within and all(checks.values())

    def as_dict(self) -> dict:
        return {**asdict(self), "median": self.median, "baseline_median": self.baseline_median, "ratio": self.ratio,
                "met": self.met}


def scale_tag(scale: float) -> str:
    """1 -> "1", 0.1 -> "0_1", 0.01 -> "0_01" (database names and file names)."""
    return f"{scale:g}".replace(".", "_").replace("-", "m")


@dataclass
class Bench:
    scale: float
    seed: int
    runs: int
    log: Callable[[str], None] = print
    # Overrides for quick runs (None: each benchmark's default for the scale).
    http_seconds: float | None = None
    attachment_mb: int | None = None
    mcp_calls: int | None = None
    sizes: dataset.Sizes = field(init=False)
    _copies: int = field(default=0, init=False, repr=False)
    version: str = field(init=False)

    def __post_init__(self):
        self.sizes = dataset.Sizes.at(self.scale)
        # Fixed for the whole run: a migration added meanwhile must not rename the templates.
        self.version = dataset_version()

    # --- Databases --------------------------------------------------------------------------

    @property
    def base_name(self) -> str:
        return f"bench_{self.version}_s{scale_tag(self.scale)}_r{self.seed}"

    @property
    def source_db(self) -> str:
        """The generated dataset, before any reconciliation."""
        return self.base_name

    @property
    def reconciled_db(self) -> str:
        """The dataset after a full reconciliation (every source has its pending item)."""
        return f"{self.base_name}_rec"

    def ensure_source(self) -> None:
        if pg.exists(self.source_db):
            self.log(f"dataset {self.source_db} exists; reusing it")
            return
        building = f"{self.base_name}_new"
        pg.create(building)
        self.log(f"migrating {building}")
        self.manage(building, "migrate", "--noinput")
        started = time.perf_counter()
        written = dataset.generate(building, self.sizes, self.seed)
        self.log(f"generated {written} in {time.perf_counter() - started:.1f} s")
        self.worker("prepare_dataset", building)
        pg.analyze(building)
        self.rename(building, self.source_db)

    def ensure_reconciled(self) -> None:
        """Kept from the last full-reconciliation run when that ran, else made here."""
        if pg.exists(self.reconciled_db):
            return
        self.ensure_source()
        building = f"{self.base_name}_recnew"
        pg.create(building, template=self.source_db)
        self.worker("reconcile_all", building)
        self.keep_as_reconciled(building)

    def keep_as_reconciled(self, name: str) -> None:
        pg.analyze(name)
        self.rename(name, self.reconciled_db)

    @staticmethod
    def rename(old: str, new: str) -> None:
        pg.drop(new)
        with pg.connect(autocommit=True) as connection:
            connection.execute(f'ALTER DATABASE "{old}" RENAME TO "{new}"')

    @contextmanager
    def copy_of(self, template: str, keep: bool = False) -> Iterator[str]:
        """A fresh file copy of a template database, dropped afterwards unless `keep`."""
        self._copies += 1
        name = f"{self.base_name}_w{os.getpid()}_{self._copies}"
        pg.create(name, template=template)
        try:
            yield name
        finally:
            if not keep:
                pg.drop(name)

    # --- Processes --------------------------------------------------------------------------

    def environment(self, database: str) -> dict:
        return {**os.environ, "DATABASE_URL": pg.database_url(database), "DJANGO_SETTINGS_MODULE": "bench.settings",
                "DATABASE_CONN_MAX_AGE": "60", "PYTHONHASHSEED": "0"}

    def manage(self, database: str, *args: str) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.environment(database), check=True,
                       stdout=subprocess.DEVNULL)

    def worker(self, case: str, database: str, **args) -> dict:
        """Run one product operation in a new process; its JSON report."""
        completed = subprocess.run([sys.executable, "-m", "bench.worker", case, json.dumps(args)], cwd=ROOT,
                                   env=self.environment(database), capture_output=True, text=True)
        if completed.returncode:
            raise RuntimeError(f"bench.worker {case} failed:\n{completed.stderr[-4000:]}")
        return json.loads(completed.stdout.strip().splitlines()[-1])

    # --- SQL ----------------------------------------------------------------------------------

    @staticmethod
    def timed_sql(database: str, statements: list[str], params: dict | None = None) -> tuple[float, list[int]]:
        """Run statements in one transaction; seconds and the row count of each."""
        with pg.connect(database) as connection:
            started = time.perf_counter()
            counts = [connection.execute(statement, params or {}).rowcount for statement in statements]
            connection.commit()
            return time.perf_counter() - started, counts

    @staticmethod
    def query(database: str, statement: str, params=None) -> list[tuple]:
        with pg.connect(database) as connection:
            return connection.execute(statement, params).fetchall()

    def repeat(self, measure: Callable[[int], float]) -> list[float]:
        """`measure(run_index)` once per run; the values."""
        return [measure(index) for index in range(self.runs)]
