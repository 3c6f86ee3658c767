"""DRF permission classes. Visibility (404) comes from each view's `visible_to` queryset; these
classes add the 403 for objects a user can see but not change, before any input is parsed."""

from rest_framework import exceptions, permissions

from rbac.querysets import MISSING_PERMISSION_MESSAGE, has_project_permission

SUPERUSER_REQUIRED_MESSAGE = "Only a superuser may use this endpoint."


class ProjectObjectPermission(permissions.IsAuthenticated):
    """The view declares `write_permission` / `delete_permission` (codes) and `project_of(obj)`."""

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        permission = view.delete_permission if request.method == "DELETE" else view.write_permission
        project = view.project_of(obj)
        if has_project_permission(request.user, project.pk, permission):
            return True
        raise exceptions.PermissionDenied(
            MISSING_PERMISSION_MESSAGE.format(permission=permission, project=project.key), code="missing_permission"
        )


class IsSuperuser(permissions.IsAuthenticated):
    message = SUPERUSER_REQUIRED_MESSAGE

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        if not request.user.is_superuser:
            raise exceptions.PermissionDenied(self.message, code="superuser_required")
        return True
