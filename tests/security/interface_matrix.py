"""The registry of the interface permission matrix: one entry per REST operation that /api/schema/
serves (`"GET /api/tickets/{key}/"`) and per MCP tool (`"mcp:get_ticket"`). An entry says which
object scopes apply, how to fill the path parameters / arguments (and a body for writes) from the
world, and the rule giving the expected outcome per subject and scope. The rules reuse the
per-resource tables of tests/permission_matrix.py and the billing levels (HELD/NEEDED) of
tests/billing/test_api_permissions.py; this file only says which row an operation follows.

Scopes: "own" (an object of HOME, where the role subjects hold their role), "foreign" (one of
AWAY, where they hold nothing), "mixed" (a settlement spanning HOME and AWAY; for ticket reads, the
HOME ticket linked to it). Operations whose answer cannot depend on a project (billing is global,
users and tokens are per user, share links are per token) run once, in scope "global".
"""

import base64
from collections.abc import Callable
from dataclasses import dataclass

from django.core.files.uploadedfile import SimpleUploadedFile

from tests.billing.test_api_permissions import ENDPOINTS as BILLING_ENDPOINTS
from tests.billing.test_api_permissions import HELD, NEEDED, fill
from tests.permission_matrix import DENIED, HIDDEN, OK, expected, expected_settlement

from .world import BILLING_SUBJECTS, PDF, PROJECT_ROLE_SUBJECTS, UNAUTHENTICATED_SUBJECTS, World

OWN_FOREIGN = ("own", "foreign")
ALL_SCOPES = ("own", "foreign", "mixed")
GLOBAL = ("global",)


@dataclass(frozen=True)
class Expect:
    status: int
    codes: frozenset = frozenset()   # the error code must be one of these (empty: not checked)
    listed: bool | None = None       # lists: whether the scope's object is among the results

    def __str__(self):
        text = str(self.status)
        if self.codes:
            text += " " + "/".join(sorted(self.codes))
        if self.listed is not None:
            text += " listed" if self.listed else " not listed"
        return text


@dataclass(frozen=True)
class Call:
    """One REST request (`method`, `path`, JSON or multipart `body`, `query`) or MCP tool call
    (`method` "mcp", `path` the tool, `body` the arguments)."""

    method: str
    path: str
    body: dict | None = None
    query: dict | None = None
    multipart: bool = False


@dataclass(frozen=True)
class Entry:
    scopes: tuple
    call: Callable[[World, str, object], Call]      # (world, scope, subject) → Call
    rule: Callable[[str, str], Expect]             # (subject name, scope) → Expect
    family: str = "project"                         # "project", "billing", "public", "user"
    listed: Callable[[dict, World, str], bool] | None = None   # lists: is the scope's object in the body


# --- Subjects as rows of the shared tables ----------------------------------------------------

# How the custom role (tickets:read + settlements:read/write/delete) reads in the per-resource
# tables: like a Viewer for tickets and the project itself, like an Owner for settlements.
CUSTOM_AS = {"tickets": "viewer", "settlements": "owner", "project": "viewer"}
# The billing matrix's subjects, by what they hold.
HELD_AS = {"non_member": "plain", "custom": "project_owner", "superuser": "superuser",
           **{role: "project_owner" for role in PROJECT_ROLE_SUBJECTS},
           **{name: level.split(".")[1] for name, level in BILLING_SUBJECTS.items()}}


def matrix_role(subject: str, family: str) -> str:
    if subject in PROJECT_ROLE_SUBJECTS or subject in ("non_member", "superuser", "anonymous"):
        return subject
    if subject == "custom":
        return CUSTOM_AS[family]
    if subject in BILLING_SUBJECTS:
        return "non_member"  # billing rights are global: they give nothing in a project
    raise ValueError(subject)


def unauthenticated(subject: str, *, mcp: bool = False) -> Expect:
    if subject == "anonymous" and not mcp:
        return Expect(401, frozenset({"not_authenticated"}))
    return Expect(401, frozenset({"invalid_token"}))


DENIED_CODES = frozenset({"missing_permission"})


def to_expect(outcome: str, ok: int, *, create: bool = False, denied=DENIED_CODES, listing: bool = False) -> Expect:
    if listing:
        return Expect(200, listed=outcome == OK)
    if outcome == OK:
        return Expect(ok)
    if outcome == DENIED:
        return Expect(403, denied)
    if outcome == HIDDEN:
        # A reference to an invisible project or ticket in a body reads exactly like a missing one.
        return Expect(400, frozenset({"does_not_exist"})) if create else Expect(404, frozenset({"not_found"}))
    raise ValueError(outcome)


def project_rule(resource: str, action: str, ok: int, *, family: str = "tickets", denied=DENIED_CODES):
    """A row of tests/permission_matrix.OWN_PROJECT; "mixed" is the HOME ticket of the mixed settlement."""
    def rule(subject: str, scope: str) -> Expect:
        if subject in UNAUTHENTICATED_SUBJECTS:
            return unauthenticated(subject)
        outcome = expected(resource, action, matrix_role(subject, family), own=scope != "foreign")
        return to_expect(outcome, ok, create=action == "create", denied=denied, listing=action == "list")
    return rule


# Settlement actions that change the settlement: a mixed one needs the right in AWAY too.
SETTLEMENT_WRITES = frozenset({"create", "update", "delete", "transition", "link", "unlink", "upload",
                               "attachment_update", "attachment_delete", "share", "share_revoke"})


def settlement_outcome(action: str, subject: str, scope: str) -> str:
    """tests/permission_matrix.expected_settlement, extended to the mixed settlement: reading needs
    settlements:read in one of its projects (so it reads as own); changing it needs the right in
    every project, and nobody but the superuser holds one in AWAY. A create naming AWAY meets an
    invisible project first, as a foreign create does."""
    role = matrix_role(subject, "settlements")
    if scope == "mixed" and action == "create":
        return expected_settlement(action, role, own=False)
    outcome = expected_settlement(action, role, own=scope != "foreign")
    if scope == "mixed" and action in SETTLEMENT_WRITES and outcome == OK and role != "superuser":
        return DENIED
    return outcome


def settlement_rule(action: str, ok: int, *, mcp: bool = False):
    def rule(subject: str, scope: str) -> Expect:
        if subject in UNAUTHENTICATED_SUBJECTS:
            return unauthenticated(subject, mcp=mcp)
        return to_expect(settlement_outcome(action, subject, scope), ok, create=action == "create",
                         listing=action == "list")
    return rule


def billing_rule(needs: str, ok: int, *, mcp: bool = False):
    def rule(subject: str, scope: str) -> Expect:
        if subject in UNAUTHENTICATED_SUBJECTS:
            return unauthenticated(subject, mcp=mcp)
        if HELD[HELD_AS[subject]] >= NEEDED[needs]:
            return Expect(ok)
        return Expect(403, frozenset({"missing_permission"}))
    return rule


def superuser_rule(ok: int):
    def rule(subject: str, scope: str) -> Expect:
        if subject in UNAUTHENTICATED_SUBJECTS:
            return unauthenticated(subject)
        return Expect(ok) if subject == "superuser" else Expect(403, frozenset({"superuser_required"}))
    return rule


def authenticated_rule(ok: int, *, own_only_scope: bool = False, codes: set[str] | None = None):
    """Anyone signed in; with `own_only_scope`, the object is the caller's own in scope "own" and
    someone else's in "foreign" (a 404 even for a superuser: tokens are per user)."""
    def rule(subject: str, scope: str) -> Expect:
        if subject in UNAUTHENTICATED_SUBJECTS:
            return unauthenticated(subject)
        if own_only_scope and scope == "foreign":
            return Expect(404, frozenset({"not_found"}))
        return Expect(ok, frozenset(codes)) if codes else Expect(ok)
    return rule


def public_rule(ok: int):
    """The customer page: the share token is the credential; an Authorization header is ignored."""
    def rule(subject: str, scope: str) -> Expect:
        return Expect(ok)
    return rule


# --- Lists: is the scope's object among the results ------------------------------------------

def _ids(body) -> list:
    return [row["id"] for row in body["results"]]


def listed_by_id(kind: str):
    def check(body, world: World, scope: str) -> bool:
        return getattr(world, kind)[scope].pk in _ids(body)
    return check


def listed_ticket(body, world: World, scope: str) -> bool:
    return world.ticket[scope].key in [row["key"] for row in body["results"]]


def listed_project(body, world: World, scope: str) -> bool:
    return world.project[scope].key in [row["key"] for row in body["results"]]


# --- REST entries -------------------------------------------------------------------------------

def _rest(method, path_of, body=None, query=None, multipart=False):
    """`path_of(world, scope, subject)` → path; `body(world, scope)` → the request body."""
    def call(world, scope, subject):
        return Call(method, path_of(world, scope, subject), body(world, scope) if body else None, query, multipart)
    return call


def _project(world, scope, subject=None):
    return f"/api/projects/{world.project[scope].key}/"


REST: dict[str, Entry] = {
    # Projects: creating one is a global right; the rest follow the project row.
    "GET /api/projects/": Entry(OWN_FOREIGN, _rest("get", lambda w, s, u: "/api/projects/"),
                                project_rule("project", "list", 200, family="project"), listed=listed_project),
    "POST /api/projects/": Entry(GLOBAL, _rest("post", lambda w, s, u: "/api/projects/",
                                                lambda w, s: {"key": "NEWP", "name": "New project"}),
                                 project_rule("project", "create", 201, family="project",
                                              denied=frozenset({"permission_denied"}))),
    "GET /api/projects/{key}/": Entry(OWN_FOREIGN, _rest("get", _project),
                                      project_rule("project", "retrieve", 200, family="project")),
    "PUT /api/projects/{key}/": Entry(OWN_FOREIGN, _rest("put", _project, lambda w, s: {
        "key": w.project[s].key, "name": "Renamed"}), project_rule("project", "update", 200, family="project")),
    "PATCH /api/projects/{key}/": Entry(OWN_FOREIGN, _rest("patch", _project, lambda w, s: {"name": "Renamed"}),
                                        project_rule("project", "update", 200, family="project")),
    # Only an empty project can be deleted: HOMEX/AWAYX, where the subjects hold the same roles.
    "DELETE /api/projects/{key}/": Entry(OWN_FOREIGN, _rest(
        "delete", lambda w, s, u: f"/api/projects/{w.empty_project[s].key}/"),
        project_rule("project", "delete", 204, family="project")),
}


def _project_children(collection: str, template: str, sample: str, create_body: dict, patch_body: dict):
    """A project's members or roles: reading follows reading the project, changing follows
    changing it (create/update need project update, delete needs project delete)."""
    base = f"/api/projects/{{project_key}}/{collection}/"
    detail = f"{base}{{{template}}}/"

    def url(suffix=""):
        return lambda w, s, u: f"{_project(w, s)}{collection}/{suffix}"

    def entry(method, path, action, status, body=None):
        return Entry(OWN_FOREIGN, _rest(method, path, (lambda w, s: body) if body else None),
                     project_rule("project", action, status, family="project"))

    return {
        f"GET {base}": entry("get", url(), "retrieve", 200),
        f"POST {base}": entry("post", url(), "update", 201, create_body),
        f"GET {detail}": entry("get", url(f"{sample}/"), "retrieve", 200),
        f"PATCH {detail}": entry("patch", url(f"{sample}/"), "update", 200, patch_body),
        f"DELETE {detail}": entry("delete", url(f"{sample}/"), "delete", 204),
    }


REST.update(_project_children("members", "username", "m_victim", {"user": "m_non_member", "role": "viewer"},
                              {"role": "member"}))
REST.update(_project_children("roles", "slug", "reader",
                              {"slug": "auditor", "name": "Auditor", "permissions": ["tickets:read"]},
                              {"name": "Renamed"}))


def _crud(base: str, resource: str, kind: str, ident, body, *, delete_kind: str | None = None, scopes=OWN_FOREIGN,
          listed=None):
    """The six ModelViewSet operations of a ticket-scoped resource."""
    detail = f"{base}{{{'key' if resource == 'ticket' else 'id'}}}/"

    def path(attribute):
        return lambda w, s, u: f"{base}{ident(getattr(w, attribute)[s])}/"

    return {
        f"GET {base}": Entry(scopes, _rest("get", lambda w, s, u: base, query={"page_size": 500}),
                             project_rule(resource, "list", 200), listed=listed),
        f"POST {base}": Entry(OWN_FOREIGN, _rest("post", lambda w, s, u: base, lambda w, s: body(w, s, True)),
                              project_rule(resource, "create", 201)),
        f"GET {detail}": Entry(scopes, _rest("get", path(kind)), project_rule(resource, "retrieve", 200)),
        f"PUT {detail}": Entry(OWN_FOREIGN, _rest("put", path(kind), lambda w, s: body(w, s, True)),
                               project_rule(resource, "update", 200)),
        f"PATCH {detail}": Entry(OWN_FOREIGN, _rest("patch", path(kind), lambda w, s: body(w, s, False)),
                                 project_rule(resource, "update", 200)),
        f"DELETE {detail}": Entry(OWN_FOREIGN, _rest("delete", path(delete_kind or kind)),
                                  project_rule(resource, "delete", 204)),
    }


def _ticket_body(w, s, full):
    return {"project": w.project[s].key, "title": "Created"} if full else {"title": "Renamed"}


def _time_body(w, s, full):
    return ({"ticket": w.ticket[s].key, "work_date": "2026-10-01", "minutes": 30} if full else {"minutes": 45})


def _expense_body(w, s, full):
    return ({"ticket": w.ticket[s].key, "date": "2026-10-01", "description": "Hotel", "amount": "120.50",
             "currency": "NOK"} if full else {"amount": "99.90"})


REST.update(_crud("/api/tickets/", "ticket", "ticket", lambda t: t.key, _ticket_body, delete_kind="spare_ticket",
                  scopes=ALL_SCOPES, listed=listed_ticket))
REST.update(_crud("/api/time-entries/", "time_entry", "time_entry", lambda e: e.pk, _time_body,
                  listed=listed_by_id("time_entry")))
REST.update(_crud("/api/expenses/", "expense", "expense", lambda e: e.pk, _expense_body,
                  listed=listed_by_id("expense")))


# Settlements: each route follows a row of tests/permission_matrix.SETTLEMENT_OWN_PROJECT.
def _draft(w, s, u=None):
    return f"/api/settlements/{w.draft[s].pk}/"


def _sent(w, s, u=None):
    return f"/api/settlements/{w.sent[s].pk}/"


def _period(w, s):
    projects = [p.key for p in ([w.home, w.away] if s == "mixed" else [w.project[s]])]
    return {"name": "New", "period_start": "2026-11-01", "period_end": "2026-11-30", "projects": projects}


def _upload(w, s):
    return {"file": SimpleUploadedFile("b.pdf", PDF)}


SETTLEMENT_ROUTES = {
    # key: (action row, method, path, body, ok status)
    "GET /api/settlements/": ("list", "get", lambda w, s, u: "/api/settlements/", None, 200),
    "POST /api/settlements/": ("create", "post", lambda w, s, u: "/api/settlements/", _period, 201),
    "GET /api/settlements/{id}/": ("retrieve", "get", _draft, None, 200),
    "PUT /api/settlements/{id}/": ("update", "put", _draft, lambda w, s: {
        **_period(w, s), "period_start": "2026-10-01", "period_end": "2026-10-31", "name": "Renamed"}, 200),
    "PATCH /api/settlements/{id}/": ("update", "patch", _draft, lambda w, s: {"name": "Renamed"}, 200),
    "DELETE /api/settlements/{id}/": ("delete", "delete", _draft, None, 204),
    "POST /api/settlements/{id}/transition/": ("transition", "post", lambda w, s, u: _draft(w, s) + "transition/",
                                               lambda w, s: {"status": "sent"}, 200),
    "GET /api/settlements/{id}/tickets/": ("retrieve", "get", lambda w, s, u: _draft(w, s) + "tickets/", None, 200),
    "POST /api/settlements/{id}/tickets/": ("link", "post", lambda w, s, u: _draft(w, s) + "tickets/",
                                            lambda w, s: {"ticket": w.free[s].key}, 201),
    "DELETE /api/settlements/{id}/tickets/{ticket_ref}/": (
        "unlink", "delete", lambda w, s, u: f"{_draft(w, s)}tickets/{w.linked[s].key}/", None, 204),
    "GET /api/settlements/{id}/search-tickets/": ("search", "get", lambda w, s, u: _draft(w, s) + "search-tickets/",
                                                  None, 200),
    "GET /api/settlements/{id}/events/": ("events", "get", lambda w, s, u: _draft(w, s) + "events/", None, 200),
    "GET /api/settlements/{id}/attachments/": ("attachments", "get", lambda w, s, u: _draft(w, s) + "attachments/",
                                               None, 200),
    "POST /api/settlements/{id}/attachments/": ("upload", "post", lambda w, s, u: _draft(w, s) + "attachments/",
                                                _upload, 201),
    "PATCH /api/settlements/{id}/attachments/{attachment_id}/": (
        "attachment_update", "patch", lambda w, s, u: f"{_draft(w, s)}attachments/{w.attachment[s].pk}/",
        lambda w, s: {"state": "signed"}, 200),
    "DELETE /api/settlements/{id}/attachments/{attachment_id}/": (
        "attachment_delete", "delete", lambda w, s, u: f"{_draft(w, s)}attachments/{w.attachment[s].pk}/", None, 204),
    "GET /api/settlements/{id}/attachments/{attachment_id}/download/": (
        "download", "get", lambda w, s, u: f"{_draft(w, s)}attachments/{w.attachment[s].pk}/download/", None, 200),
    "GET /api/settlements/{id}/share-links/": ("share_links", "get", lambda w, s, u: _sent(w, s) + "share-links/",
                                               None, 200),
    "POST /api/settlements/{id}/share-links/": ("share", "post", lambda w, s, u: _sent(w, s) + "share-links/",
                                                lambda w, s: {}, 201),
    "DELETE /api/settlements/{id}/share-links/{link_id}/": (
        "share_revoke", "delete", lambda w, s, u: f"{_sent(w, s)}share-links/{w.share_link[s].pk}/", None, 204),
}
for _key, (_action, _method, _path, _body, _ok) in SETTLEMENT_ROUTES.items():
    REST[_key] = Entry(ALL_SCOPES, _rest(_method, _path, _body, multipart=_body is _upload),
                       settlement_rule(_action, _ok), listed=listed_by_id("draft") if _action == "list" else None)


# The customer page: the share link's token is the credential, whoever calls.
def _public(w, s, u=None):
    return f"/api/public/settlements/{w.share_token[s]}/"


REST.update({
    "GET /api/public/settlements/{token}/": Entry(ALL_SCOPES, _rest("get", _public), public_rule(200),
                                                  family="public"),
    "POST /api/public/settlements/{token}/accept/": Entry(
        ALL_SCOPES, _rest("post", lambda w, s, u: _public(w, s) + "accept/", lambda w, s: {"name": "Customer"}),
        public_rule(201), family="public"),
    "GET /api/public/settlements/{token}/attachments/{attachment_id}/download/": Entry(
        ALL_SCOPES, _rest("get", lambda w, s, u: f"{_public(w, s)}attachments/{w.sent_attachment[s].pk}/download/"),
        public_rule(200), family="public"),
})


# Users (superusers only, except /me/) and the caller's own API tokens.
def _victim(w, s, u=None):
    return f"/api/users/{w.victim.pk}/"


def _token_path(w, s, subject):
    # "own": the caller's own token; "foreign": the keeper's.
    token_id = subject.token_id if s == "own" and subject.token_id else w.keeper_token_id
    return f"/api/tokens/{token_id}/"


REST.update({
    "GET /api/users/": Entry(GLOBAL, _rest("get", lambda w, s, u: "/api/users/"), superuser_rule(200), family="user"),
    "POST /api/users/": Entry(GLOBAL, _rest("post", lambda w, s, u: "/api/users/", lambda w, s: {
        "username": "m_newcomer", "password": "pw-12345678"}), superuser_rule(201), family="user"),
    "GET /api/users/{id}/": Entry(GLOBAL, _rest("get", _victim), superuser_rule(200), family="user"),
    "PUT /api/users/{id}/": Entry(GLOBAL, _rest("put", _victim, lambda w, s: {
        "username": "m_victim", "email": "victim@example.com"}), superuser_rule(200), family="user"),
    "PATCH /api/users/{id}/": Entry(GLOBAL, _rest("patch", _victim, lambda w, s: {"first_name": "Vic"}),
                                    superuser_rule(200), family="user"),
    "DELETE /api/users/{id}/": Entry(GLOBAL, _rest("delete", _victim), superuser_rule(204), family="user"),
    "POST /api/users/{id}/tokens/": Entry(GLOBAL, _rest("post", lambda w, s, u: _victim(w, s) + "tokens/",
                                                        lambda w, s: {"name": "service"}),
                                          superuser_rule(201), family="user"),
    "GET /api/users/me/": Entry(GLOBAL, _rest("get", lambda w, s, u: "/api/users/me/"), authenticated_rule(200),
                                family="user"),
    "GET /api/tokens/": Entry(GLOBAL, _rest("get", lambda w, s, u: "/api/tokens/"), authenticated_rule(200),
                              family="user"),
    # Every subject here signs in with a token, and a token may not mint tokens (a session may:
    # tests/rbac/test_tokens.py).
    "POST /api/tokens/": Entry(GLOBAL, _rest("post", lambda w, s, u: "/api/tokens/", lambda w, s: {"name": "new"}),
                               authenticated_rule(403, codes={"session_required"}), family="user"),
    "GET /api/tokens/{id}/": Entry(OWN_FOREIGN, _rest("get", _token_path),
                                   authenticated_rule(200, own_only_scope=True), family="user"),
    "DELETE /api/tokens/{id}/": Entry(OWN_FOREIGN, _rest("delete", _token_path),
                                      authenticated_rule(204, own_only_scope=True), family="user"),
})


# Billing: global rights, the billing matrix's endpoints and world (its route names here).
BILLING_ROUTES = {
    "GET /api/billing/clients/": "clients-list", "POST /api/billing/clients/": "clients-create",
    "GET /api/billing/clients/{id}/": "clients-retrieve", "PUT /api/billing/clients/{id}/": "clients-replace",
    "PATCH /api/billing/clients/{id}/": "clients-update", "DELETE /api/billing/clients/{id}/": "clients-delete",
    "GET /api/billing/contracts/": "contracts-list", "POST /api/billing/contracts/": "contracts-create",
    "GET /api/billing/contracts/{id}/": "contracts-retrieve", "PUT /api/billing/contracts/{id}/": "contracts-replace",
    "PATCH /api/billing/contracts/{id}/": "contracts-update",
    "DELETE /api/billing/contracts/{id}/": "contracts-delete",
    "GET /api/billing/sales-lines/": "sales-lines-list", "POST /api/billing/sales-lines/": "sales-lines-create",
    "GET /api/billing/sales-lines/{id}/": "sales-lines-retrieve",
    "PUT /api/billing/sales-lines/{id}/": "sales-lines-replace",
    "PATCH /api/billing/sales-lines/{id}/": "sales-lines-update",
    "DELETE /api/billing/sales-lines/{id}/": "sales-lines-delete",
    "GET /api/billing/items/": "items-list", "GET /api/billing/items/{id}/": "items-retrieve",
    "POST /api/billing/items/{id}/void/": "items-void", "POST /api/billing/items/{id}/restore/": "items-restore",
    "GET /api/billing/reconciliation-runs/": "runs-list", "GET /api/billing/reconciliation-runs/{id}/": "runs-retrieve",
    "GET /api/billing/reconciliation-runs/{id}/unmatched/": "runs-unmatched",
    "GET /api/billing/logs/": "logs-list", "GET /api/billing/logs/{id}/": "logs-retrieve",
    "POST /api/billing/recalculate/": "recalculate", "GET /api/billing/recalculate/{task_id}/": "recalculate-status",
    "GET /api/billing/settings/": "settings-read", "PATCH /api/billing/settings/": "settings-change",
    "GET /api/billing/runs/": "billing-runs-list", "POST /api/billing/runs/": "billing-runs-build",
    "GET /api/billing/runs/{id}/": "billing-runs-retrieve", "DELETE /api/billing/runs/{id}/": "billing-runs-delete",
    "POST /api/billing/runs/{id}/post/": "billing-runs-post",
    "GET /api/billing/runs/{id}/export/": "billing-runs-export",
    "GET /api/billing/invoices/": "invoices-list", "GET /api/billing/invoices/{id}/": "invoices-retrieve",
    "POST /api/billing/invoices/{id}/post/": "invoices-post",
    "POST /api/billing/invoices/{id}/refresh/": "invoices-refresh",
    "POST /api/billing/invoices/{id}/lines/{item_id}/remove/": "invoices-remove-line",
    "POST /api/billing/invoices/{id}/credit/": "invoices-credit",
    "POST /api/billing/invoices/{id}/debit/": "invoices-debit",
    "GET /api/billing/invoices/{id}/pdf/": "invoices-pdf", "GET /api/billing/invoices/{id}/export/": "invoices-export",
}
_BILLING_BY_NAME = {endpoint.name: endpoint for endpoint in BILLING_ENDPOINTS}


def _billing_call(endpoint):
    def call(world, scope, subject):
        body = fill(endpoint.payload, world.billing) if endpoint.payload else None
        return Call(endpoint.method, endpoint.url(world.billing), body)
    return call


for _key, _name in BILLING_ROUTES.items():
    _endpoint = _BILLING_BY_NAME[_name]
    REST[_key] = Entry(GLOBAL, _billing_call(_endpoint), billing_rule(_endpoint.needs, _endpoint.ok), family="billing")


# --- MCP tools ------------------------------------------------------------------------------------

def _tool(name, arguments: Callable[[World, str], dict]):
    return lambda world, scope, subject: Call("mcp", name, arguments(world, scope))


def _mcp_project_rule(resource, action):
    rest = project_rule(resource, action, 200)

    def rule(subject, scope):
        if subject in UNAUTHENTICATED_SUBJECTS:
            return unauthenticated(subject, mcp=True)
        return rest(subject, scope)
    return rule


def _ref(w, s):
    return {"settlement": w.draft[s].pk}


MCP: dict[str, Entry] = {
    "mcp:search_tickets": Entry(ALL_SCOPES, _tool("search_tickets", lambda w, s: {"page_size": 100}),
                                _mcp_project_rule("ticket", "list"), listed=listed_ticket),
    "mcp:get_ticket": Entry(ALL_SCOPES, _tool("get_ticket", lambda w, s: {"ticket": w.ticket[s].key}),
                            _mcp_project_rule("ticket", "retrieve")),
    "mcp:update_ticket": Entry(OWN_FOREIGN, _tool("update_ticket", lambda w, s: {"ticket": w.ticket[s].key,
                                                                                  "title": "Renamed"}),
                               _mcp_project_rule("ticket", "update")),
    "mcp:log_time": Entry(OWN_FOREIGN, _tool("log_time", lambda w, s: {"ticket": w.ticket[s].key,
                                                                        "work_date": "2026-10-01", "minutes": 30}),
                          _mcp_project_rule("time_entry", "create")),
}
SETTLEMENT_TOOLS = {
    # tool: (action row, arguments)
    "list_settlements": ("list", lambda w, s: {"page_size": 100}),
    "get_settlement": ("retrieve", _ref),
    "create_settlement": ("create", _period),
    "update_settlement": ("update", lambda w, s: {**_ref(w, s), "name": "Renamed"}),
    "delete_settlement": ("delete", _ref),
    "change_settlement_status": ("transition", lambda w, s: {**_ref(w, s), "status": "sent"}),
    "link_ticket_to_settlement": ("link", lambda w, s: {**_ref(w, s), "ticket": w.free[s].key}),
    "unlink_ticket_from_settlement": ("unlink", lambda w, s: {**_ref(w, s), "ticket": w.linked[s].key}),
    "list_settlement_tickets": ("retrieve", _ref),
    "list_settlement_attachments": ("attachments", _ref),
    "add_settlement_attachment": ("upload", lambda w, s: {**_ref(w, s), "filename": "b.pdf",
                                                          "content_base64": base64.b64encode(PDF).decode()}),
    "get_settlement_attachment": ("download", lambda w, s: {**_ref(w, s), "attachment_id": w.attachment[s].pk}),
    "delete_settlement_attachment": ("attachment_delete",
                                     lambda w, s: {**_ref(w, s), "attachment_id": w.attachment[s].pk}),
}
for _name, (_action, _arguments) in SETTLEMENT_TOOLS.items():
    MCP[f"mcp:{_name}"] = Entry(ALL_SCOPES, _tool(_name, _arguments), settlement_rule(_action, 200, mcp=True),
                                listed=listed_by_id("draft") if _action == "list" else None)
BILLING_TOOLS = {
    "list_billing_items": ("read", lambda w, s: {"client": w.billing.client.pk}),
    "recalculate_billing": ("manage", lambda w, s: {"client": w.billing.client.pk}),
    "get_recalculation": ("read", lambda w, s: {"task_id": "task-1"}),  # the billing world's run
    "list_invoices": ("read", lambda w, s: {}),
    "get_invoice": ("read", lambda w, s: {"invoice": w.billing.posted.number}),
}
for _name, (_needs, _arguments) in BILLING_TOOLS.items():
    MCP[f"mcp:{_name}"] = Entry(GLOBAL, _tool(_name, _arguments), billing_rule(_needs, 200, mcp=True),
                                family="billing")

REGISTRY: dict[str, Entry] = {**REST, **MCP}


# --- Enumeration ----------------------------------------------------------------------------------

def rest_operations(urlconf=None) -> set[str]:
    """Every operation /api/schema/ documents, as "METHOD /path/{template}/"."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator(urlconf=urlconf).get_schema(request=None, public=True)
    return {f"{method.upper()} {path}" for path, operations in schema["paths"].items() for method in operations}


def mcp_tools() -> set[str]:
    """Every tool our MCP server lists to a client (through the SDK's client, in process)."""
    import anyio
    from mcp.client import Client

    from config.mcp import build_server

    async def listed():
        async with Client(build_server(lambda ctx: None)) as client:
            return (await client.list_tools()).tools

    return {f"mcp:{tool.name}" for tool in anyio.run(listed)}


def registry_mismatch(operations: set[str], registry=REGISTRY) -> dict[str, list[str]]:
    """What the registry lacks (a new operation without an entry) and what it has in excess (a
    stale entry); both empty when they agree."""
    return {"missing": sorted(operations - set(registry)), "stale": sorted(set(registry) - operations)}


# Expected outcomes as plain data, e.g. for a report: {key: {(subject, scope): Expect}}.
def expectations(subjects) -> dict[str, dict[tuple[str, str], Expect]]:
    return {key: {(subject, scope): entry.rule(subject, scope) for subject in subjects for scope in entry.scopes}
            for key, entry in REGISTRY.items()}

