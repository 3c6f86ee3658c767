"""The per-project permission vocabulary and the built-in roles (SPEC §2)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class ProjectPermission(models.TextChoices):
    # Read tickets, time entries and expenses of the project.
    TICKETS_READ = "tickets:read", _("Tickets: read")
    # Create and edit tickets, log time and expenses.
    TICKETS_WRITE = "tickets:write", _("Tickets: write")
    # Delete tickets.
    TICKETS_DELETE = "tickets:delete", _("Tickets: delete")
    # See settlements covering the project (and settlement data on its tickets).
    SETTLEMENTS_READ = "settlements:read", _("Settlements: read")
    # Create, edit, transition settlements; link tickets; upload attachments.
    SETTLEMENTS_WRITE = "settlements:write", _("Settlements: write")
    # Delete settlements and their attachments.
    SETTLEMENTS_DELETE = "settlements:delete", _("Settlements: delete")
    # Manage the project itself: settings, members, custom roles; reverse settlement transitions.
    PROJECT_ADMIN = "project:admin", _("Project: admin")


def codename(permission: str) -> str:
    """Guardian codename on tickets.Project for a permission code (`tickets:read` → `tickets_read`)."""
    return permission.replace(":", "_")


ALL_PROJECT_PERMISSIONS = tuple(ProjectPermission.values)
PROJECT_PERMISSION_META = tuple((codename(p.value), str(p.label)) for p in ProjectPermission)

P = ProjectPermission
BUILTIN_ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "owner": ("Owner", ALL_PROJECT_PERMISSIONS),
    "admin": ("Admin", (P.TICKETS_READ, P.TICKETS_WRITE, P.TICKETS_DELETE,
                        P.SETTLEMENTS_READ, P.SETTLEMENTS_WRITE, P.PROJECT_ADMIN)),
    "member": ("Member", (P.TICKETS_READ, P.TICKETS_WRITE)),
    "viewer": ("Viewer", (P.TICKETS_READ,)),
}
OWNER_ROLE = "owner"


class BillingPermission(models.TextChoices):
    # See billing items, runs, invoices and logs.
    VIEW = "billing.view", _("Billing: view")
    # Recalculate, build drafts, remove from run, delete run, void.
    MANAGE = "billing.manage", _("Billing: manage")
    # Post invoices, credit notes, billing settings.
    ADMIN = "billing.admin", _("Billing: admin")


# Global (not per-project) permissions a superuser may grant through the API.
GRANTABLE_GLOBAL_PERMISSIONS = (*BillingPermission.values, "tickets.add_project")
