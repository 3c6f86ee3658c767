"""Who may see and change billing data. Billing is global (not per project): `billing.view`
reads everything, `billing.manage` adds recalculation, voids, clients, contracts and sales lines,
`billing.admin` adds settings (and, later, posting). Each level includes the ones below it."""

from django.db import models

from rbac.choices import BillingPermission

# action -> the permissions any one of which allows it
BILLING_ACTIONS = {
    "read": (BillingPermission.VIEW, BillingPermission.MANAGE, BillingPermission.ADMIN),
    "manage": (BillingPermission.MANAGE, BillingPermission.ADMIN),
    "admin": (BillingPermission.ADMIN,),
}
MISSING_BILLING_PERMISSION_MESSAGE = "You need the {permission} permission for this."


def billing_allows(user, action: str) -> bool:
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return any(user.has_perm(permission) for permission in BILLING_ACTIONS[action])


def required_billing_permission(action: str) -> str:
    return str(BILLING_ACTIONS[action][0])


class BillingQuerySet(models.QuerySet):
    def visible_to(self, user, action: str = "read") -> "BillingQuerySet":
        return self.all() if billing_allows(user, action) else self.none()
