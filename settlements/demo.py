"""Settlements of the `make run` demo: a cross-project draft to work on and a sent settlement
with a share link, so the dashboard and the customer page have something to show.

Written through the services (links obey the period-overlap rule, sending freezes the tickets)."""

from datetime import date, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction

from tickets.models import Project

from . import services
from .choices import SettlementStatus
from .models import Settlement


def _last_month(today: date) -> tuple[date, date]:
    end = today.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def _link_first_tickets(settlement: Settlement, *, actor, project: Project, count: int) -> None:
    for ticket in project.tickets.order_by("number")[:count]:
        services.settlement_link_ticket(actor=actor, settlement=settlement, ticket=ticket)


@transaction.atomic
def load_settlements_demo(*, today: date | None = None) -> str | None:
    """Create the demo settlements; returns the customer-page path of the sent one, or None when
    the demo settlements exist already (or the base demo was not loaded)."""
    admin = get_user_model().objects.filter(username="admin").first()
    projects = {project.key: project for project in Project.objects.filter(key__in=["MNX", "ACME", "FJORD"])}
    if admin is None or len(projects) < 3 or Settlement.objects.exists():
        return None
    start, end = _last_month(today or date.today())
    draft = services.settlement_create(
        actor=admin, name="Platform and webshop support", period_start=start, period_end=end,
        projects=[projects["MNX"], projects["ACME"]],
        notes="Monthly support for the **Monolynx platform** and the **Acme webshop**.\n\n- Incidents\n- Upgrades",
    )
    _link_first_tickets(draft, actor=admin, project=projects["MNX"], count=2)
    _link_first_tickets(draft, actor=admin, project=projects["ACME"], count=1)
    sent = services.settlement_create(actor=admin, name="Mobile app milestone 1", period_start=start,
                                      period_end=end, projects=[projects["FJORD"]])
    _link_first_tickets(sent, actor=admin, project=projects["FJORD"], count=3)
    services.settlement_transition(actor=admin, settlement=sent, status=SettlementStatus.SENT)
    _, token = services.share_link_create(actor=admin, settlement=sent)
    return f"/s/{token}/"
