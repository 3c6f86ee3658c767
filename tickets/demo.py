"""Demo data for `make run`: a few clients' projects, users in every role, tickets, time, expenses.

Written through the services, so it obeys the same rules as real input. Deterministic (seeded).
"""

import random
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction

from rbac import services as rbac_services

from . import services
from .choices import Activity, TicketPriority, TicketStatus
from .models import Project

DEMO_PASSWORD = "demo-password"
PROJECTS = [
    ("MNX", "Monolynx platform", "NOK", Decimal("400"), Decimal("480000")),
    ("ACME", "Acme webshop", "EUR", Decimal("250"), Decimal("30000")),
    ("FJORD", "Fjord Bank mobile app", "NOK", Decimal("800"), Decimal("950000")),
    ("NORD", "Nordlys intranet", "NOK", None, None),
]
# username → {project key: role}
PEOPLE = {
    "olivia": {"MNX": "owner", "ACME": "owner", "FJORD": "owner", "NORD": "owner"},
    "adam": {"MNX": "admin", "FJORD": "admin"},
    "maria": {"MNX": "member", "ACME": "member", "FJORD": "member"},
    "tom": {"FJORD": "member", "NORD": "member"},
    "vera": {"MNX": "viewer", "ACME": "viewer"},
}
TITLES = ["Login fails with SSO", "Export invoices as CSV", "Slow dashboard on large projects",
          "Add dark mode", "Upgrade Django", "Fix time zone on reports", "Customer onboarding flow",
          "Payment webhook retries", "Search by ticket key", "Accessibility audit", "Mobile push notifications",
          "Nightly backup check"]


def _user(username: str, *, superuser: bool = False, password: str = DEMO_PASSWORD):
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=username, defaults={"email": f"{username}@example.com", "is_staff": True,
                                     "is_superuser": superuser, "first_name": username.title()},
    )
    if created:
        user.set_password(password)
        user.save()
    return user


@transaction.atomic
def load_demo_data(*, admin_password: str, seed: int = 7) -> bool:
    """Create the demo installation; returns False if it already exists."""
    if Project.objects.filter(key=PROJECTS[0][0]).exists():
        return False
    rng = random.Random(seed)
    admin = _user("admin", superuser=True, password=admin_password)
    people = {name: _user(name) for name in PEOPLE}
    billing_clerk = _user("bella")
    rbac_services.user_set_global_permissions(actor=admin, user=billing_clerk,
                                              permissions=["billing.view", "billing.manage", "billing.admin"])
    projects = {}
    for key, name, currency, hours, amount in PROJECTS:
        projects[key] = services.project_create(
            actor=admin, key=key, name=name, description=f"Demo project {name}.", budget_hours=hours,
            budget_amount=amount, budget_currency=currency if amount else "",
        )
    for username, roles in PEOPLE.items():
        for key, role in roles.items():
            rbac_services.membership_set(actor=admin, project=projects[key], user=people[username], role_slug=role)
    today = date.today()
    for key, project in projects.items():
        workers = [people[u] for u, roles in PEOPLE.items() if roles.get(key) in ("owner", "admin", "member")]
        for title in rng.sample(TITLES, 8):
            ticket = services.ticket_create(
                actor=admin, project=project, title=title, description=f"{title} — reported by the customer.",
                priority=rng.choice(TicketPriority.values), status=rng.choice(TicketStatus.values),
                assignee=rng.choice(workers), due_date=today + timedelta(days=rng.randint(-10, 40)),
            )
            for _ in range(rng.randint(2, 6)):
                worker = rng.choice(workers)
                services.time_entry_create(
                    actor=worker, ticket=ticket, work_date=today - timedelta(days=rng.randint(0, 75)),
                    minutes=rng.choice([15, 30, 45, 60, 90, 120, 240, 450]), activity=rng.choice(Activity.values),
                    description="Work on " + title.lower(), billable=rng.random() > 0.15,
                )
            if rng.random() < 0.3:
                services.expense_create(
                    actor=admin, ticket=ticket, date=today - timedelta(days=rng.randint(0, 60)),
                    description="Software licence", amount=Decimal(rng.randint(200, 5000)),
                    currency=project.budget_currency or "NOK",
                )
    return True
