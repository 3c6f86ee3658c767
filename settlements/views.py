"""Dashboard pages of settlements."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def settlement_list(request):
    return render(request, "tickets/dashboard_home.html")
