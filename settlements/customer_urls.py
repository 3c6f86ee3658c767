"""The customer page behind a share link (under /s/)."""

from django.urls import path

from . import customer_views

app_name = "customer"

urlpatterns = [
    path("<str:token>/", customer_views.settlement_page, name="settlement"),
]
