"""Top-level URLs: the dashboard pages, the customer page, admin, REST API with its schema and docs."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.views import health, home
from tickets.views import dashboard_home

api_patterns = [
    path("", include("tickets.api.urls")),
    path("", include("rbac.api.urls")),
    path("", include("settlements.api.urls")),
    path("billing/", include("billing.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]

dashboard_patterns = [
    path("", dashboard_home, name="dashboard"),
    path("", include("tickets.urls")),
    path("", include("settlements.urls")),
    path("profile/", include("rbac.urls")),
]

urlpatterns = [
    path("", home, name="home"),
    path("health/", health, name="health"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("dashboard/", include(dashboard_patterns)),
    # The customer page behind a share link: no login, no navigation into the rest of the app.
    path("s/", include("settlements.customer_urls")),
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    path("i18n/", include("django.conf.urls.i18n")),
]
