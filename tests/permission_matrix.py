"""Who may do what to project data: the expected outcome per resource × action × role, for an
object in a project where the actor holds the role ("own") and one where they hold none
("foreign"). Shared by every interface's matrix test (REST now, MCP later) so it is written once.
"""

OK, DENIED, HIDDEN, UNAUTHENTICATED = "ok", "denied", "hidden", "unauthenticated"

ROLES = ("anonymous", "non_member", "viewer", "member", "admin", "owner", "superuser")
ACTIONS = ("list", "retrieve", "create", "update", "delete")
PROJECT_ROLES = ("viewer", "member", "admin", "owner")


def _row(*, viewer, member, admin, owner):
    return {"viewer": viewer, "member": member, "admin": admin, "owner": owner}


_READ_ALL = _row(viewer=OK, member=OK, admin=OK, owner=OK)
_WRITERS = _row(viewer=DENIED, member=OK, admin=OK, owner=OK)
_ADMINS = _row(viewer=DENIED, member=DENIED, admin=OK, owner=OK)

# Outcomes for members of the object's own project, by resource and action.
OWN_PROJECT = {
    "project": {"list": _READ_ALL, "retrieve": _READ_ALL,
                # Creating projects is a global right (tickets.add_project), not a project role.
                "create": _row(viewer=DENIED, member=DENIED, admin=DENIED, owner=DENIED),
                "update": _ADMINS, "delete": _ADMINS},
    "ticket": {"list": _READ_ALL, "retrieve": _READ_ALL, "create": _WRITERS, "update": _WRITERS, "delete": _ADMINS},
    "time_entry": {"list": _READ_ALL, "retrieve": _READ_ALL, "create": _WRITERS, "update": _WRITERS,
                   "delete": _WRITERS},
    "expense": {"list": _READ_ALL, "retrieve": _READ_ALL, "create": _WRITERS, "update": _WRITERS,
                "delete": _WRITERS},
}
RESOURCES = tuple(OWN_PROJECT)


def expected(resource: str, action: str, role: str, *, own: bool) -> str:
    if role == "anonymous":
        return UNAUTHENTICATED
    if role == "superuser":
        return OK
    if resource == "project" and action == "create":
        return DENIED  # not project-scoped: the same for own and foreign
    if role == "non_member" or not own:
        return HIDDEN
    return OWN_PROJECT[resource][action][role]


def cases():
    """Every (resource, action, role, own) combination, for pytest.mark.parametrize."""
    return [(resource, action, role, own) for resource in RESOURCES for action in ACTIONS for role in ROLES
            for own in (True, False)]


# --- Settlements: rights are settlements:* in the settlement's project(s) ---------------------

SETTLEMENT_ACTIONS = ("list", "retrieve", "create", "update", "delete", "transition", "link", "unlink",
                      "search", "events", "attachments", "upload", "attachment_update", "attachment_delete",
                      "download", "share_links", "share", "share_revoke")
_NO_SETTLEMENT_RIGHTS = {"viewer": HIDDEN, "member": HIDDEN}
_SETTLEMENT_READ = {**_NO_SETTLEMENT_RIGHTS, "admin": OK, "owner": OK}
SETTLEMENT_OWN_PROJECT = {
    "list": _SETTLEMENT_READ, "retrieve": _SETTLEMENT_READ, "search": _SETTLEMENT_READ, "events": _SETTLEMENT_READ,
    # Members see the project, so lacking settlements:write there is a 403, not a 404.
    "create": {"viewer": DENIED, "member": DENIED, "admin": OK, "owner": OK},
    "update": _SETTLEMENT_READ, "transition": _SETTLEMENT_READ, "link": _SETTLEMENT_READ,
    "unlink": _SETTLEMENT_READ,
    "delete": {**_NO_SETTLEMENT_RIGHTS, "admin": DENIED, "owner": OK},
    "attachments": _SETTLEMENT_READ, "download": _SETTLEMENT_READ, "share_links": _SETTLEMENT_READ,
    "upload": _SETTLEMENT_READ, "attachment_update": _SETTLEMENT_READ, "share": _SETTLEMENT_READ,
    "share_revoke": _SETTLEMENT_READ,
    "attachment_delete": {**_NO_SETTLEMENT_RIGHTS, "admin": DENIED, "owner": OK},
}


def expected_settlement(action: str, role: str, *, own: bool) -> str:
    if role == "anonymous":
        return UNAUTHENTICATED
    if role == "superuser":
        return OK
    if role == "non_member" or not own:
        return HIDDEN
    return SETTLEMENT_OWN_PROJECT[action][role]


def settlement_cases():
    return [(action, role, own) for action in SETTLEMENT_ACTIONS for role in ROLES for own in (True, False)]
