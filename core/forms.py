"""The sign-in forms of the dashboard and the admin: Django's, telling an address that has failed
too often why it cannot sign in (core.throttling.ThrottledModelBackend refuses it)."""

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .throttling import TOO_MANY_FAILURES_CODE, login_blocked

TOO_MANY_SIGN_INS_MESSAGE = _("Too many failed sign-ins from your address. Try again in %(seconds)s seconds.")


class _ThrottleAware:
    def get_invalid_login_error(self):
        verdict = login_blocked(self.request)
        if verdict is not None:
            return ValidationError(TOO_MANY_SIGN_INS_MESSAGE, code=TOO_MANY_FAILURES_CODE,
                                   params={"seconds": verdict.retry_after})
        return super().get_invalid_login_error()


class SignInForm(_ThrottleAware, AuthenticationForm):
    pass


class AdminSignInForm(_ThrottleAware, AdminAuthenticationForm):
    pass
