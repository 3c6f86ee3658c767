"""Top-level URLs: the dashboard pages, the customer page, admin, REST API with its schema and docs."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.decorators.http import require_safe
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.forms import AdminSignInForm, SignInForm
from core.middleware import with_content_security_policy
from core.views import health, home
from tickets.views import dashboard_home

SWAGGER_UI_CDN = "https://cdn.jsdelivr.net"
API_DOCS_POLICY = (f"default-src 'self'; script-src 'self' {SWAGGER_UI_CDN}; "
                   f"style-src 'self' {SWAGGER_UI_CDN} 'unsafe-inline'; img-src 'self' data: {SWAGGER_UI_CDN}; "
                   "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")

api_patterns = [
    path("", include("tickets.api.urls")),
    path("", include("rbac.api.urls")),
    path("", include("settlements.api.urls")),
    path("billing/", include("billing.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI comes from its CDN and styles itself inline; its script is served from this URL
    # (?script), not inline, so no script runs that is not a file. Read-only: any other method is a
    # 405 (DRF would fail to render its refusal with the page's HTML-only renderer).
    path("docs/", require_safe(with_content_security_policy(API_DOCS_POLICY)(
        SpectacularSwaggerSplitView.as_view(url_name="schema"))), name="api-docs"),
]

dashboard_patterns = [
    path("", dashboard_home, name="dashboard"),
    path("", include("tickets.urls")),
    path("", include("settlements.urls")),
    path("profile/", include("rbac.urls")),
]

# Failed sign-ins are throttled per address (core.throttling); these forms say so.
admin.site.login_form = AdminSignInForm

urlpatterns = [
    path("", home, name="home"),
    path("health/", health, name="health"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True,
                                                         authentication_form=SignInForm), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("dashboard/", include(dashboard_patterns)),
    # The customer page behind a share link: no login, no navigation into the rest of the app.
    path("s/", include("settlements.customer_urls")),
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    path("i18n/", include("django.conf.urls.i18n")),
]

handler404 = "core.api.exceptions.not_found"
handler400 = "core.api.exceptions.bad_request"
