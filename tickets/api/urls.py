from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("projects", views.ProjectViewSet, basename="project")
router.register("tickets", views.TicketViewSet, basename="ticket")
router.register("time-entries", views.TimeEntryViewSet, basename="time-entry")
router.register("expenses", views.ExpenseViewSet, basename="expense")

project_children = SimpleRouter()
project_children.register("members", views.MembershipViewSet, basename="project-member")
project_children.register("roles", views.RoleViewSet, basename="project-role")

urlpatterns = [*router.urls, path("projects/<str:project_key>/", include(project_children.urls))]
