"""Dashboard pages of projects, tickets and the Kanban board."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def dashboard_home(request):
    return render(request, "tickets/dashboard_home.html")


@login_required
def project_list(request):
    return render(request, "tickets/dashboard_home.html")


@login_required
def ticket_list(request):
    return render(request, "tickets/dashboard_home.html")
