"""The one world the interface matrix runs in, built once per module: projects HOME (where the
role subjects hold their role) and AWAY (where they hold nothing), tickets, time entries, expenses,
settlements in HOME, in AWAY and spanning both ("mixed"), attachments, share links, custom roles,
billing data (the billing matrix's world plus a contract over HOME and AWAY), and the 14 subjects
with real personal API tokens.

Everything in AWAY that a subject without rights there must never see carries a sentinel
(`LEAK_*`), so a response body can be searched for it."""

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from rbac import services as rbac_services
from rbac.choices import ProjectPermission as P
from rbac.models import ApiToken, Role
from settlements import services as settlement_services
from tests.billing.conftest import grant_billing, reconcile
from tests.billing.test_api_permissions import build_world as build_billing_world
from tests.factories import (
    ClientFactory,
    ContractFactory,
    ExpenseFactory,
    ProjectFactory,
    TicketFactory,
    TimeEntryFactory,
    UserFactory,
    grant,
)

SUBJECTS = ("anonymous", "bad_token", "revoked_token", "expired_token", "non_member", "viewer", "member", "admin",
            "owner", "custom", "superuser", "billing_view", "billing_manage", "billing_admin")
# Subjects the API cannot authenticate: no header, or a token that is unknown, revoked or expired.
UNAUTHENTICATED_SUBJECTS = ("anonymous", "bad_token", "revoked_token", "expired_token")
PROJECT_ROLE_SUBJECTS = ("viewer", "member", "admin", "owner")
# Billing staff: a global billing permission and no project membership.
BILLING_SUBJECTS = {"billing_view": "billing.view", "billing_manage": "billing.manage",
                    "billing_admin": "billing.admin"}
# The custom project role (rbac supports per-project roles): reads tickets and does everything with
# settlements, but may not change tickets nor administer the project. No built-in role has that set.
CUSTOM_ROLE = "accountant"
CUSTOM_PERMISSIONS = [P.TICKETS_READ, P.SETTLEMENTS_READ, P.SETTLEMENTS_WRITE, P.SETTLEMENTS_DELETE]
BAD_TOKEN = "sbt_this-token-was-never-issued-0000000000000"

SCOPES = ("own", "foreign", "mixed")
PDF = b"%PDF-1.4\ninterface matrix"

# --- Sentinels --------------------------------------------------------------------------------
# In AWAY (or, for amounts, on the AWAY ticket of the mixed settlement): never in a response to a
# subject without rights there.
LEAK_TITLE = "XQZAWAYTITLE"
LEAK_DESCRIPTION = "XQZAWAYDESC"
LEAK_SETTLEMENT = "XQZAWAYSETTLEMENT"
# Settlement data of HOME (and of the mixed settlement): only for subjects with settlements:read.
SETTLEMENT_MARK = "XQZSETTLEMENT"
# Minutes logged on the AWAY ticket of the mixed settlement, and the totals they would make:
# 1397 min = 23.28 h = 23283.30 NOK at 1000/h; with the HOME ticket's 60 min: 1457 min, 24283.30.
AWAY_MIXED_MINUTES = 1397
HOME_MIXED_MINUTES = 60
LEAK_AMOUNTS = [re.compile(pattern) for pattern in (
    r'"minutes":\s*(1397|1457)\b', r'"hours":\s*"(23|24)\.28"', r'"(23283|24283)\.30"')]


@dataclass
class Subject:
    name: str
    user: object = None
    token: str | None = None          # the plain token sent as Bearer
    token_id: int | None = None       # the subject's own token row (for /api/tokens/{id}/)


@dataclass
class World:
    keeper: object
    keeper_token_id: int
    home: object
    away: object
    project: dict = field(default_factory=dict)        # scope → project
    empty_project: dict = field(default_factory=dict)  # scope → a project with nothing in it (deletable)
    ticket: dict = field(default_factory=dict)         # scope → a ticket (mixed: HOME's, in the mixed settlement)
    spare_ticket: dict = field(default_factory=dict)   # scope → a ticket with nothing attached (deletable)
    time_entry: dict = field(default_factory=dict)
    expense: dict = field(default_factory=dict)
    draft: dict = field(default_factory=dict)          # scope → draft settlement
    linked: dict = field(default_factory=dict)         # scope → a ticket linked to that draft, readable in HOME
    free: dict = field(default_factory=dict)           # scope → a ticket that may be linked to that draft
    attachment: dict = field(default_factory=dict)     # scope → the draft's attachment
    sent: dict = field(default_factory=dict)           # scope → sent settlement with a share link
    share_link: dict = field(default_factory=dict)
    share_token: dict = field(default_factory=dict)
    sent_attachment: dict = field(default_factory=dict)
    role: dict = field(default_factory=dict)           # scope → an unused custom role of the project
    victim: object = None                              # a Viewer of HOME and AWAY: members, users routes
    subjects: dict = field(default_factory=dict)       # name → Subject
    billing: object = None                             # the billing matrix's World
    foreign_numbers: tuple = ()                        # display numbers of AWAY-only settlements
    mcp_servers: dict = field(default_factory=dict)    # subject name → in-process MCP server (lazy)


def _token(user, *, name="matrix", expires_at=None):
    token, plain = rbac_services.api_token_create(actor=user, user=user, name=name, expires_at=expires_at)
    return token, plain


def _subjects(world: World) -> dict:
    subjects = {"anonymous": Subject("anonymous"), "bad_token": Subject("bad_token", token=BAD_TOKEN)}
    for name in ("revoked_token", "expired_token"):
        # A token of a HOME Owner: everything would be allowed if the token still counted.
        user = UserFactory(username=f"m_{name}")
        grant(user, world.home, "owner")
        token, plain = _token(user, expires_at=timezone.now() + timedelta(days=1))
        if name == "revoked_token":
            rbac_services.api_token_revoke(actor=user, token=token)
        else:
            ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
        subjects[name] = Subject(name, user=user, token=plain, token_id=token.pk)
    for name in ("non_member", *PROJECT_ROLE_SUBJECTS, "custom", "superuser", *BILLING_SUBJECTS):
        user = UserFactory(username=f"m_{name}", is_superuser=name == "superuser")
        if name in PROJECT_ROLE_SUBJECTS:
            grant(user, world.home, name)
            grant(user, world.empty_project["own"], name)
        elif name == "custom":
            grant(user, world.home, CUSTOM_ROLE)
            grant(user, world.empty_project["own"], CUSTOM_ROLE)
        elif name in BILLING_SUBJECTS:
            grant_billing(user, BILLING_SUBJECTS[name])
        token, plain = _token(user)
        subjects[name] = Subject(name, user=user, token=plain, token_id=token.pk)
    return subjects


def build_world() -> World:
    billing_world = build_billing_world()
    keeper = UserFactory(username="m_keeper")
    home, away = ProjectFactory(key="HOME", name="Home project"), ProjectFactory(key="AWAY", name="Away project")
    homex, awayx = ProjectFactory(key="HOMEX"), ProjectFactory(key="AWAYX")
    for project in (home, away, homex, awayx):
        grant(keeper, project, "owner")
        rbac_services.role_create(actor=keeper, project=project, slug="reader", name="Reader",
                                  permissions=[P.TICKETS_READ])
    for project in (home, homex):
        rbac_services.role_create(actor=keeper, project=project, slug=CUSTOM_ROLE, name="Accountant",
                                  permissions=CUSTOM_PERMISSIONS)
    world = World(keeper=keeper, keeper_token_id=_token(keeper)[0].pk, home=home, away=away,
                  billing=billing_world)
    world.project = {"own": home, "foreign": away}
    world.empty_project = {"own": homex, "foreign": awayx}
    world.role = {"own": Role.objects.get(project=home, slug="reader"),
                  "foreign": Role.objects.get(project=away, slug="reader")}
    world.victim = UserFactory(username="m_victim")
    grant(world.victim, home, "viewer")
    grant(world.victim, away, "viewer")
    world.subjects = _subjects(world)
    member = world.subjects["member"].user

    def away_ticket(label):
        return TicketFactory(project=away, title=f"{LEAK_TITLE} {label}", description=f"{LEAK_DESCRIPTION} {label}")

    # Tickets, time entries and expenses. A member may change their own entries only, so the HOME
    # entries are the Member subject's (as in tests/tickets/test_permission_matrix.py).
    world.ticket = {"own": TicketFactory(project=home, title="Home target"), "foreign": away_ticket("target")}
    world.spare_ticket = {"own": TicketFactory(project=home, title="Home spare"), "foreign": away_ticket("spare")}
    world.time_entry = {"own": TimeEntryFactory(ticket=world.ticket["own"], user=member),
                        "foreign": TimeEntryFactory(ticket=world.ticket["foreign"], user=keeper)}
    world.expense = {"own": ExpenseFactory(ticket=world.ticket["own"], user=member),
                     "foreign": ExpenseFactory(ticket=world.ticket["foreign"], user=keeper,
                                               description=f"{LEAK_DESCRIPTION} expense")}

    # Settlements: drafts in October, sent ones (with a share link) in September.
    def settlement(name, projects, start, end):
        return settlement_services.settlement_create(actor=keeper, name=name, period_start=start, period_end=end,
                                                     projects=projects)

    october, september = (date(2026, 10, 1), date(2026, 10, 31)), (date(2026, 9, 1), date(2026, 9, 30))
    scope_projects = {"own": [home], "foreign": [away], "mixed": [home, away]}
    label = {"own": f"{SETTLEMENT_MARK} home", "foreign": f"{LEAK_SETTLEMENT} away",
             "mixed": f"{SETTLEMENT_MARK} mixed"}
    home_free = TicketFactory(project=home, title="Home free")
    world.free = {"own": home_free, "foreign": away_ticket("free"), "mixed": home_free}
    world.linked = {"own": TicketFactory(project=home, title="Home linked"), "foreign": away_ticket("linked"),
                    "mixed": TicketFactory(project=home, title="Home in mixed")}
    world.ticket["mixed"] = world.linked["mixed"]
    mixed_away = away_ticket("in mixed")
    for scope, projects in scope_projects.items():
        draft = settlement(f"{label[scope]} draft", projects, *october)
        settlement_services.settlement_link_ticket(actor=keeper, settlement=draft, ticket=world.linked[scope])
        if scope == "mixed":
            settlement_services.settlement_link_ticket(actor=keeper, settlement=draft, ticket=mixed_away)
        world.attachment[scope] = settlement_services.attachment_upload(
            actor=keeper, settlement=draft, uploaded=SimpleUploadedFile("draft.pdf", PDF))
        world.draft[scope] = draft
        sent = settlement(f"{label[scope]} sent", projects, *september)
        for project in projects:
            ticket = (TicketFactory(project=project, title="Home sent") if project == home
                      else away_ticket("sent"))
            settlement_services.settlement_link_ticket(actor=keeper, settlement=sent, ticket=ticket)
        world.sent_attachment[scope] = settlement_services.attachment_upload(
            actor=keeper, settlement=sent, uploaded=SimpleUploadedFile("sent.pdf", PDF))
        settlement_services.settlement_transition(actor=keeper, settlement=sent, status="sent")
        world.share_link[scope], world.share_token[scope] = settlement_services.share_link_create(
            actor=keeper, settlement=sent)
        world.sent[scope] = sent
    world.foreign_numbers = (world.draft["foreign"].display_number, world.sent["foreign"].display_number)

    # Money on the mixed settlement's tickets: a contract over HOME and AWAY, reconciled.
    TimeEntryFactory(ticket=world.linked["mixed"], user=keeper, minutes=HOME_MIXED_MINUTES,
                     work_date=date(2026, 10, 6))
    TimeEntryFactory(ticket=mixed_away, user=keeper, minutes=AWAY_MIXED_MINUTES, work_date=date(2026, 10, 7))
    client = ClientFactory(name="Matrix AS")
    ContractFactory(client=client, projects=[home, away], valid_from=date(2026, 1, 1))
    reconcile(client_id=client.pk)
    return world
