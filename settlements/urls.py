"""Dashboard pages of settlements (under /dashboard/)."""

from django.urls import path

from . import views

app_name = "settlements"

urlpatterns = [
    path("settlements/", views.settlement_list, name="list"),
    # The original product's name for the same view.
    path("rozliczenia/", views.settlement_list, name="list-pl"),
]
