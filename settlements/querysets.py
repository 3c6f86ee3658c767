"""Visibility of settlements. A settlement spans several projects: reading needs
`settlements:read` in at least one of them; changing needs the permission in every one."""

import re

from django.apps import apps
from django.db import models
from django.db.models import Exists, OuterRef

from rbac.choices import ProjectPermission as P
from rbac.querysets import project_ids_with

SETTLEMENT_NUMBER_RE = re.compile(r"^(?P<prefix>[A-Za-z]{1,10})-(?P<number>\d{1,9})$")
SETTLEMENT_ACTIONS = {"read": P.SETTLEMENTS_READ, "write": P.SETTLEMENTS_WRITE, "delete": P.SETTLEMENTS_DELETE}


class SettlementQuerySet(models.QuerySet):
    def active(self) -> "SettlementQuerySet":
        return self.filter(is_active=True)

    def by_reference(self, reference) -> "SettlementQuerySet":
        """An id (`12`) or a displayed number (`ROZ-12`); nothing if malformed."""
        text = str(reference).strip()
        if text.isascii() and text.isdigit():
            return self.filter(pk=int(text))
        match = SETTLEMENT_NUMBER_RE.match(text)
        if not match:
            return self.none()
        return self.filter(prefix__iexact=match["prefix"], number=int(match["number"]))

    def visible_to(self, user, action: str = "read") -> "SettlementQuerySet":
        try:
            permission = SETTLEMENT_ACTIONS[action]
        except KeyError:
            raise ValueError(f"Unknown action {action!r} for settlements") from None
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        queryset = self.active()
        ids = project_ids_with(user, permission)
        if ids is None:
            return queryset
        links = apps.get_model("settlements", "SettlementProject").objects.filter(settlement=OuterRef("pk"))
        if action == "read":
            return queryset.filter(Exists(links.filter(project__in=ids)))
        # Every project of the settlement must grant the permission.
        return queryset.filter(Exists(links)).exclude(Exists(links.exclude(project__in=ids)))
