"""Billing (SPEC §4). For now it only declares the global billing permissions."""

from django.db import models


class BillingAccess(models.Model):
    """Holds no rows: it exists so the global permissions billing.view/manage/admin exist."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view", "Billing: view items, runs, invoices and logs"),
            ("manage", "Billing: recalculate, build drafts, remove from run, delete run, void"),
            ("admin", "Billing: post invoices, credit notes, settings"),
        ]

    def __str__(self) -> str:
        return "Billing access"
