"""Billing demo data for `make run`: clients with contracts over the demo projects (a rate card,
a monthly fee, a timebank, a foreign-currency client), a sales line, and a first reconciliation.
Written through the services as the billing clerk `bella`. Needs the tickets demo data first."""

from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction

from tickets.choices import Activity
from tickets.models import Project

from . import services
from .models import Client
from .reconciliation import Scope

CLIENTS = [
    # name, currency, VAT, projects, contract terms
    ("Monolynx AS", "NOK", Decimal("0.25"), ["MNX", "NORD"],
     {"hourly_rate": Decimal("1250.00"), "rounding_minutes": 15, "monthly_fee": Decimal("4900.00"),
      "rates": {Activity.SUPPORT: Decimal("950.00"), Activity.CONSULTING: Decimal("1600.00")}}),
    ("Acme GmbH", "EUR", Decimal("0"), ["ACME"], {"hourly_rate": Decimal("120.00")}),
    ("Fjord Bank ASA", "NOK", Decimal("0.25"), ["FJORD"],
     {"hourly_rate": Decimal("1400.00"), "timebank_hours": Decimal("20"), "overage_rate": Decimal("1550.00"),
      "rounding_minutes": 30}),
]


@transaction.atomic
def load_billing_demo() -> bool:
    """Create the demo clients and contracts and reconcile; False if they already exist."""
    if Client.objects.filter(name=CLIENTS[0][0]).exists():
        return False
    clerk = get_user_model().objects.get(username="bella")
    start = date.today().replace(day=1) - timedelta(days=120)
    for name, currency, vat_rate, keys, terms in CLIENTS:
        client = services.client_create(actor=clerk, name=name, currency=currency, vat_rate=vat_rate)
        terms = dict(terms)
        services.contract_create(actor=clerk, client=client, name=f"{name} — service agreement",
                                 projects=list(Project.objects.filter(key__in=keys)), valid_from=start,
                                 rates=terms.pop("rates", {}), **terms)
    services.sales_line_create(actor=clerk, client=Client.objects.get(name="Monolynx AS"), date=date.today(),
                               description="SSL certificate renewal", qty=Decimal("1"), unit_price=Decimal("890.00"))
    transaction.on_commit(lambda: services.recalculate_now(actor=clerk, scope=Scope()))
    return True
