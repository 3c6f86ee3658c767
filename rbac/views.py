"""The profile page: the user's project roles and personal API tokens.

A new token is shown exactly once, in the answer to the POST that created it; only its digest is
stored, so it can never be shown again."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from core.errors import InvalidInput
from core.pages import add_service_errors, invalid_form_response, post_action

from . import services
from .forms import ApiTokenForm
from .models import ApiToken, Membership

PROFILE_TEMPLATE = "accounts/profile.html"


def _profile_context(request, form: ApiTokenForm, **extra) -> dict:
    return {
        "form": form,
        "tokens": ApiToken.objects.filter(user=request.user).order_by("-created_at", "-id"),
        "memberships": (Membership.objects.filter(user=request.user)
                        .select_related("project", "role").order_by("project__key")),
        **extra,
    }


@login_required
def profile(request):
    return render(request, PROFILE_TEMPLATE, _profile_context(request, ApiTokenForm()))


@never_cache
@post_action
def token_create(request):
    form = ApiTokenForm(request.POST)
    if form.is_valid():
        try:
            token, plain = services.api_token_create(actor=request.user, user=request.user, **form.cleaned_data)
        except InvalidInput as error:
            add_service_errors(form, error)
        else:
            context = _profile_context(request, ApiTokenForm(), new_token=token, plain_token=plain)
            return render(request, PROFILE_TEMPLATE, context, status=201)
    return invalid_form_response(request, PROFILE_TEMPLATE, _profile_context(request, form))


@post_action
def token_revoke(request, pk: int):
    # Someone else's token is a 404, like a missing one.
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    services.api_token_revoke(actor=request.user, token=token)
    messages.success(request, _("Token “%(name)s” revoked.") % {"name": token.name})
    return redirect("accounts:profile")
