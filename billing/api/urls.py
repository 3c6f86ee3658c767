"""Routes of the billing API, mounted at /api/billing/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("clients", views.ClientViewSet, basename="billing-client")
router.register("contracts", views.ContractViewSet, basename="billing-contract")
router.register("sales-lines", views.SalesLineViewSet, basename="billing-sales-line")
router.register("items", views.BillingItemViewSet, basename="billing-item")
router.register("reconciliation-runs", views.ReconciliationRunViewSet, basename="billing-reconciliation-run")
router.register("logs", views.BillingLogViewSet, basename="billing-log")
router.register("recalculate", views.RecalculateViewSet, basename="billing-recalculate")
router.register("runs", views.BillingRunViewSet, basename="billing-run")
router.register("invoices", views.InvoiceViewSet, basename="billing-invoice")

urlpatterns = [
    *router.urls,
    path("settings/", views.BillingSettingsView.as_view(), name="billing-settings"),
]
