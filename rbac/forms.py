"""Dashboard forms of the profile page."""

from django import forms
from django.utils.translation import gettext_lazy as _


class ApiTokenForm(forms.Form):
    name = forms.CharField(label=_("Token name"), max_length=100,
                           help_text=_("What the token is for, e.g. “accounting export script”."))
    expires_at = forms.DateTimeField(label=_("Expires at"), required=False,
                                     widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                     help_text=_("Leave empty for a token that does not expire."))
