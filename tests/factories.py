"""factory_boy factories. They build rows directly (test set-up); behaviour is tested through
the services and the API."""

from datetime import date
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.db.models import F

from rbac import services as rbac_services
from tickets.choices import Activity
from tickets.models import Expense, Project, Ticket, TimeEntry


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw-12345678")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    key = factory.Sequence(lambda n: "P" + "".join(chr(65 + int(d)) for d in f"{n:03d}"))
    name = factory.LazyAttribute(lambda p: f"Project {p.key}")


class TicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Ticket

    project = factory.SubFactory(ProjectFactory)
    title = factory.Sequence(lambda n: f"Ticket {n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        project = kwargs["project"]
        # Take the next number from the project's counter, as the service does.
        Project.objects.filter(pk=project.pk).update(next_ticket_number=F("next_ticket_number") + 1)
        kwargs.setdefault("number", Project.objects.get(pk=project.pk).next_ticket_number - 1)
        return super()._create(model_class, *args, **kwargs)


class TimeEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TimeEntry

    ticket = factory.SubFactory(TicketFactory)
    user = factory.SubFactory(UserFactory)
    work_date = date(2026, 10, 15)
    minutes = 60
    activity = Activity.DEVELOPMENT


class ExpenseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Expense

    ticket = factory.SubFactory(TicketFactory)
    user = factory.SubFactory(UserFactory)
    date = date(2026, 10, 15)
    description = "Licence"
    amount = Decimal("100.00")
    currency = "NOK"


def grant(user, project, role: str):
    """Give `user` a role in `project` (set-up helper: no actor check)."""
    return rbac_services.membership_set(actor=None, project=project, user=user, role_slug=role,
                                        check_permission=False)


def matrix_projects(role: str):
    """The set-up of every permission-matrix case: projects HOME and AWAY, both owned by a
    keeper, and an actor holding `role` in HOME (None for anonymous; a superuser; or nothing
    for a non-member). Returns (actor, home, away, keeper)."""
    home, away = ProjectFactory(key="HOME"), ProjectFactory(key="AWAY")
    keeper = UserFactory(username="keeper")
    grant(keeper, home, "owner")
    grant(keeper, away, "owner")
    actor = None
    if role == "superuser":
        actor = UserFactory(username="boss", is_superuser=True)
    elif role != "anonymous":
        actor = UserFactory(username="actor")
        if role != "non_member":
            grant(actor, home, role)
    return actor, home, away, keeper


class ClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "billing.Client"

    name = factory.Sequence(lambda n: f"Client {n}")
    currency = "NOK"
    vat_rate = Decimal("0.25")


class ContractFactory(factory.django.DjangoModelFactory):
    """Pass `projects=[...]` to cover projects (rows made directly, no overlap check)."""

    class Meta:
        model = "billing.Contract"
        skip_postgeneration_save = True

    client = factory.SubFactory(ClientFactory)
    name = factory.Sequence(lambda n: f"Contract {n}")
    valid_from = date(2026, 1, 1)
    hourly_rate = Decimal("1000.00")

    @factory.post_generation
    def projects(self, create, extracted, **kwargs):
        from billing.models import ContractProject

        for project in extracted or ():
            ContractProject.objects.create(contract=self, project=project)

    @factory.post_generation
    def rates(self, create, extracted, **kwargs):
        from billing.models import ContractRate

        for activity, rate in (extracted or {}).items():
            ContractRate.objects.create(contract=self, activity=activity, hourly_rate=Decimal(rate))
