"""Dashboard pages of projects, tickets and the Kanban board (under /dashboard/).

Projects are addressed by key (`MNX`), tickets by key (`MNX-12`); `tickets/new/` comes before the
ticket routes, whose pattern could never match it anyway."""

from django.urls import path, re_path

from . import views

app_name = "tickets"

PROJECT = r"(?P<key>[A-Za-z]{2,10})"
TICKET = r"(?P<key>[A-Za-z]{2,10}-\d{1,9})"

urlpatterns = [
    path("projects/", views.project_list, name="project-list"),
    re_path(rf"^projects/{PROJECT}/$", views.project_detail, name="project-detail"),
    re_path(rf"^projects/{PROJECT}/board/$", views.project_board, name="project-board"),
    path("tickets/", views.ticket_list, name="ticket-list"),
    path("tickets/new/", views.ticket_create, name="ticket-create"),
    re_path(rf"^tickets/{TICKET}/$", views.ticket_detail, name="ticket-detail"),
    re_path(rf"^tickets/{TICKET}/edit/$", views.ticket_edit, name="ticket-edit"),
    re_path(rf"^tickets/{TICKET}/status/$", views.ticket_status, name="ticket-status"),
    re_path(rf"^tickets/{TICKET}/time/$", views.time_entry_create, name="time-entry-create"),
    re_path(rf"^tickets/{TICKET}/time/(?P<pk>\d+)/delete/$", views.time_entry_delete, name="time-entry-delete"),
    re_path(rf"^tickets/{TICKET}/expenses/$", views.expense_create, name="expense-create"),
    re_path(rf"^tickets/{TICKET}/expenses/(?P<pk>\d+)/delete/$", views.expense_delete, name="expense-delete"),
]
