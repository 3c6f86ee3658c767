"""The customer page behind a share link."""

from django.http import Http404


def settlement_page(request, token):
    raise Http404
