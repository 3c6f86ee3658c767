"""Dashboard pages of projects, tickets and the Kanban board (under /dashboard/)."""

from django.urls import path

from . import views

app_name = "tickets"

urlpatterns = [
    path("projects/", views.project_list, name="project-list"),
    path("tickets/", views.ticket_list, name="ticket-list"),
]
