"""The benchmark dataset: a large agency's year, generated reproducibly from a seed and written
with COPY. At scale 1: 1,000 clients, 2,000 contracts, 5,000 projects, 200,000 tickets,
1,000,000 billable-or-not time entries over the twelve months of 2025, 50,000 expenses, 5,000
settlements. `--scale` multiplies every count (1/10, 1/100 ...).

The shape is what billing meets in practice: every client has five projects and two contracts
(January-June and July-December) covering them; a fifth of the contracts have a timebank, a third a
monthly fee, half round to 15 minutes and half carry a rate card; one client in ten has a project
no contract covers, and one expense in fifty is in a currency the client is not billed in."""

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import psycopg

YEAR = 2025
STAMP = datetime(YEAR, 12, 31, 12, 0, tzinfo=UTC)
ACTIVITIES = ("development", "support", "consulting", "design", "testing", "project_management", "meeting", "other")
STATUSES = ("backlog", "todo", "in_progress", "review", "done")
PRIORITIES = ("low", "medium", "high", "critical")
CURRENCIES = (("NOK", Decimal("0.2500"), "Europe/Oslo"), ("EUR", Decimal("0.2100"), "Europe/Berlin"),
              ("PLN", Decimal("0.2300"), "Europe/Warsaw"))
WORDS = ("API", "login", "invoice", "export", "search", "mobile", "report", "import", "cache", "checkout",
         "backup", "migration", "review", "design", "upgrade", "billing", "sync", "alerts", "pages", "audit")
SETTLEMENT_PREFIX = "ROZ"
PROJECTS_PER_CLIENT = 5

FULL = {"clients": 1_000, "contracts": 2_000, "projects": 5_000, "tickets": 200_000, "time_entries": 1_000_000,
        "expenses": 50_000, "settlements": 5_000, "sales_lines": 2_000, "users": 200}


@dataclass(frozen=True)
class Sizes:
    clients: int
    contracts: int
    projects: int
    tickets: int
    time_entries: int
    expenses: int
    settlements: int
    sales_lines: int
    users: int

    @classmethod
    def at(cls, scale: float) -> "Sizes":
        clients = max(2, round(FULL["clients"] * scale))
        counts = {name: max(1, round(count * scale)) for name, count in FULL.items()}
        counts.update(clients=clients, contracts=2 * clients, projects=PROJECTS_PER_CLIENT * clients,
                      users=max(5, counts["users"]))
        return cls(**counts)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def project_key(index: int) -> str:
    """P + three or more letters: PAAA, PAAB, ... (keys are 2-10 capital letters)."""
    letters = ""
    for _ in range(3):
        index, rest = divmod(index, 26)
        letters = chr(65 + rest) + letters
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return "P" + letters


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low * 100, high * 100)) / 100


def _day(rng: random.Random) -> date:
    return date(YEAR, 1, 1) + timedelta(days=rng.randrange(365))


class Generator:
    """Writes every table in id order; ids are explicit so rows can point at each other."""

    def __init__(self, connection: psycopg.Connection, sizes: Sizes, seed: int):
        self.connection, self.sizes, self.rng = connection, sizes, random.Random(seed)
        self.client_currency: dict[int, str] = {}

    def copy(self, table: str, columns: tuple[str, ...], rows) -> int:
        count = 0
        with self.connection.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count

    def project_client(self, project_id: int) -> int:
        return (project_id - 1) // PROJECTS_PER_CLIENT + 1

    def ticket_project(self, ticket_id: int) -> int:
        return (ticket_id - 1) * self.sizes.projects // self.sizes.tickets + 1

    def run(self) -> dict:
        steps = (self.users, self.clients, self.projects, self.contracts, self.tickets, self.time_entries,
                 self.expenses, self.sales_lines, self.settlements)
        written = {step.__name__: step() for step in steps}
        self.reset_sequences()
        return written

    def users(self):
        rows = ((i, "!", False, f"worker{i:04d}", f"Worker {i}", "Bench", f"worker{i}@example.com", True, True, STAMP)
                for i in range(1, self.sizes.users + 1))
        return self.copy("auth_user", ("id", "password", "is_superuser", "username", "first_name", "last_name", "email",
                              "is_staff", "is_active", "date_joined"), rows)

    def clients(self):
        def rows():
            for i in range(1, self.sizes.clients + 1):
                currency, vat, zone = self.rng.choices(CURRENCIES, weights=(80, 15, 5))[0]
                self.client_currency[i] = currency
                yield i, f"Client {i:05d} AS", f"9{i:08d}", currency, vat, zone, True, STAMP, STAMP
        return self.copy("billing_client", ("id", "name", "org_number", "currency", "vat_rate", "time_zone",
                                            "is_active", "created_at", "updated_at"), rows())

    def projects(self):
        next_number = self.sizes.tickets // self.sizes.projects + 2
        rows = ((i, project_key(i), f"Project {i} of client {self.project_client(i)}", "", True, None, None, "",
                 next_number, STAMP, STAMP) for i in range(1, self.sizes.projects + 1))
        return self.copy("tickets_project", ("id", "key", "name", "description", "is_active", "budget_hours",
                                             "budget_amount", "budget_currency", "next_ticket_number", "created_at",
                                             "updated_at"), rows)

    def contracts(self):
        """Two per client, January-June and July-December, with the same projects; the rate cards
        and project links are written right after."""
        rates, links = [], []

        def rows():
            for client in range(1, self.sizes.clients + 1):
                first_project = (client - 1) * PROJECTS_PER_CLIENT + 1
                covered = range(first_project, first_project + PROJECTS_PER_CLIENT - (client % 10 == 0))
                for half, (start, end) in enumerate(((date(YEAR, 1, 1), date(YEAR, 6, 30)),
                                                     (date(YEAR, 7, 1), date(YEAR, 12, 31)))):
                    contract = 2 * client - 1 + half
                    kind = self.rng.random()
                    timebank = Decimal(self.rng.choice((10, 20, 40))) if kind < 0.2 else None
                    overage = _money(self.rng, 1200, 1800) if timebank and self.rng.random() < 0.5 else None
                    fee = _money(self.rng, 2000, 20000) if 0.2 <= kind < 0.53 else None
                    rounding = 15 if self.rng.random() < 0.5 else None
                    yield (contract, client, f"Contract {contract}", start, end, _money(self.rng, 900, 1500), fee,
                           timebank, overage, rounding, STAMP, STAMP)
                    if self.rng.random() < 0.5:
                        for activity in self.rng.sample(ACTIVITIES, 3):
                            rates.append((len(rates) + 1, contract, activity, _money(self.rng, 700, 1900)))
                    links.extend((len(links) + 1, contract, project) for project in covered)
        count = self.copy("billing_contract", ("id", "client_id", "name", "valid_from", "valid_to", "hourly_rate",
                                               "monthly_fee", "timebank_hours", "overage_rate", "rounding_minutes",
                                               "created_at", "updated_at"), rows())
        self.copy("billing_contractrate", ("id", "contract_id", "activity", "hourly_rate"), rates)
        self.copy("billing_contractproject", ("id", "contract_id", "project_id"), links)
        return count

    def tickets(self):
        per_project = {}

        def rows():
            for i in range(1, self.sizes.tickets + 1):
                project = self.ticket_project(i)
                number = per_project[project] = per_project.get(project, 0) + 1
                words = " ".join(self.rng.sample(WORDS, 3))
                yield (i, project, number, f"{words.capitalize()} #{number}", "", self.rng.choice(PRIORITIES),
                       self.rng.choice(STATUSES), self.rng.randint(1, self.sizes.users), None, None, STAMP, STAMP)
        return self.copy("tickets_ticket", ("id", "project_id", "number", "title", "description", "priority", "status",
                                   "assignee_id", "due_date", "created_by_id", "created_at", "updated_at"), rows())

    def time_entries(self):
        descriptions = ("",) * 4 + tuple(f"{word} work" for word in WORDS)
        rng, tickets, users = self.rng, self.sizes.tickets, self.sizes.users
        rows = ((i, rng.randint(1, tickets), rng.randint(1, users), _day(rng), 5 * rng.randint(3, 96),
                 rng.choice(ACTIVITIES), rng.choice(descriptions), rng.random() < 0.9, STAMP, STAMP)
                for i in range(1, self.sizes.time_entries + 1))
        return self.copy("tickets_timeentry", ("id", "ticket_id", "user_id", "work_date", "minutes", "activity",
                                               "description", "billable", "created_at", "updated_at"), rows)

    def expenses(self):
        def rows():
            for i in range(1, self.sizes.expenses + 1):
                ticket = self.rng.randint(1, self.sizes.tickets)
                currency = self.client_currency[self.project_client(self.ticket_project(ticket))]
                if self.rng.random() < 0.02:
                    currency = "USD"
                yield (i, ticket, self.rng.randint(1, self.sizes.users), _day(self.rng),
                       f"{self.rng.choice(WORDS)} licence", _money(self.rng, 10, 2000), currency,
                       self.rng.random() < 0.95, STAMP, STAMP)
        return self.copy("tickets_expense", ("id", "ticket_id", "user_id", "date", "description", "amount", "currency",
                                    "billable", "created_at", "updated_at"), rows())

    def sales_lines(self):
        def rows():
            for i in range(1, self.sizes.sales_lines + 1):
                client = self.rng.randint(1, self.sizes.clients)
                day = _day(self.rng)
                contract = 2 * client - (day.month <= 6)
                yield (i, client, contract, None, day, f"{self.rng.choice(WORDS).capitalize()} package",
                       Decimal(self.rng.randint(1, 10)), _money(self.rng, 100, 5000), None, STAMP, STAMP)
        return self.copy("billing_salesline", ("id", "client_id", "contract_id", "project_id", "date", "description",
                                               "qty", "unit_price", "created_by_id", "created_at", "updated_at"),
                         rows())

    def settlements(self):
        """Monthly settlements of one or two projects of a client, ten tickets each: three in five
        paid, one sent, one a draft."""
        projects, tickets = [], []

        def rows():
            per_project = self.sizes.tickets // self.sizes.projects
            for i in range(1, self.sizes.settlements + 1):
                client = self.rng.randint(1, self.sizes.clients)
                first = (client - 1) * PROJECTS_PER_CLIENT + 1
                chosen = self.rng.sample(range(first, first + PROJECTS_PER_CLIENT), self.rng.choice((1, 2)))
                month = self.rng.randint(1, 12)
                start = date(YEAR, month, 1)
                end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
                roll = self.rng.random()
                status = "paid" if roll < 0.6 else "sent" if roll < 0.8 else "draft"
                sent = STAMP if status != "draft" else None
                paid = STAMP if status == "paid" else None
                yield (i, SETTLEMENT_PREFIX, i, f"Settlement {start:%Y-%m} client {client}", start, end, status, sent,
                       paid, "", None, STAMP, STAMP, True)
                projects.extend((len(projects) + 1, i, project) for project in chosen)
                picked = set()
                while len(picked) < 10:
                    project = self.rng.choice(chosen)
                    picked.add((project - 1) * per_project + self.rng.randint(1, max(per_project, 1)))
                tickets.extend((len(tickets) + 1, i, ticket, None, STAMP) for ticket in sorted(picked))
        count = self.copy("settlements_settlement", ("id", "prefix", "number", "name", "period_start", "period_end",
                                                     "status", "sent_at", "paid_at", "notes", "created_by_id",
                                                     "created_at", "updated_at", "is_active"), rows())
        self.copy("settlements_settlementproject", ("id", "settlement_id", "project_id"), projects)
        self.copy("settlements_settlementticket", ("id", "settlement_id", "ticket_id", "linked_by_id", "linked_at"),
                  tickets)
        self.copy("settlements_settlementcounter", ("id", "prefix", "next_number"),
                  [(1, SETTLEMENT_PREFIX, self.sizes.settlements + 1)])
        return count

    def reset_sequences(self) -> None:
        tables = ("auth_user", "billing_client", "tickets_project", "billing_contract", "billing_contractrate",
                  "billing_contractproject", "tickets_ticket", "tickets_timeentry", "tickets_expense",
                  "billing_salesline", "settlements_settlement", "settlements_settlementproject",
                  "settlements_settlementticket", "settlements_settlementcounter")
        with self.connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)")


def generate(database: str, sizes: Sizes, seed: int) -> dict:
    from . import pg

    with pg.connect(database) as connection:
        written = Generator(connection, sizes, seed).run()
        connection.commit()
    return written
