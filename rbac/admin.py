"""Admin screens for roles, memberships and API tokens, restricted per project."""

from django.contrib import admin, messages
from django.db.models import Q

from core.admin import ServiceAdmin
from rbac.choices import ProjectPermission as P

from . import services
from .models import ApiToken, Membership, Role
from .querysets import has_project_permission, project_ids_with


def administered_projects(user):
    """Projects where `user` is project admin (for dropdowns of admin-only actions)."""
    project_model = Membership._meta.get_field("project").related_model
    return project_model.objects.visible_to(user, P.PROJECT_ADMIN)


class ProjectScopedAdmin(ServiceAdmin):
    """Admin for objects of one project: changing and deleting need a project permission."""

    change_permission: str = P.PROJECT_ADMIN
    delete_permission: str = P.PROJECT_ADMIN

    def project_id_of(self, obj) -> int | None:
        return obj.project_id

    def _holds(self, request, obj, permission: str) -> bool:
        if obj is None:
            return self.has_module_permission(request)
        project_id = self.project_id_of(obj)
        return project_id is not None and has_project_permission(request.user, project_id, permission)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._holds(request, obj, self.change_permission)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._holds(request, obj, self.delete_permission)


@admin.register(Role)
class RoleAdmin(ProjectScopedAdmin):
    list_display = ["name", "slug", "project", "is_builtin"]
    list_filter = ["is_builtin"]
    fields = ["project", "slug", "name", "permissions"]

    def get_readonly_fields(self, request, obj=None):
        return ["project", "slug"] if obj else []

    def get_queryset(self, request):
        return self.visible_roles(request.user).select_related("project")

    @staticmethod
    def visible_roles(user):
        ids = project_ids_with(user, None)
        return Role.objects.all() if ids is None else Role.objects.filter(Q(project__isnull=True) | Q(project__in=ids))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "project":
            kwargs["queryset"] = administered_projects(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_add_permission(self, request) -> bool:
        return self.has_module_permission(request)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            services.role_update(actor=request.user, role=Role.objects.get(pk=obj.pk), name=data["name"],
                                 permissions=data["permissions"])
        else:
            if data.get("project") is None:
                raise services.PermissionDenied("Custom roles belong to a project.", code="project_required")
            created = services.role_create(actor=request.user, project=data["project"], slug=data["slug"],
                                           name=data["name"], permissions=data["permissions"])
            obj.pk = created.pk

    def delete_model(self, request, obj):
        services.role_delete(actor=request.user, role=obj)


@admin.register(Membership)
class MembershipAdmin(ProjectScopedAdmin):
    list_display = ["user", "project", "role", "updated_at"]
    # Filters and dropdowns offer only what the user may see: no project names leak.
    list_filter = [("role", admin.RelatedOnlyFieldListFilter), ("project", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["user__username", "project__key"]
    list_select_related = ["user", "project", "role"]
    fields = ["user", "project", "role"]

    def get_queryset(self, request):
        return Membership.objects.visible_to(request.user, "read").select_related("user", "project", "role")

    def get_readonly_fields(self, request, obj=None):
        return ["user", "project"] if obj else []

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "project":
            kwargs["queryset"] = administered_projects(request.user)
        elif db_field.name == "role":
            kwargs["queryset"] = RoleAdmin.visible_roles(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_add_permission(self, request) -> bool:
        return self.has_module_permission(request)

    def save_model(self, request, obj, form, change):
        role = form.cleaned_data["role"]
        if role.project_id not in (None, obj.project_id):
            raise services.InvalidInput.for_field("role", "This role belongs to another project.", code="foreign_role")
        membership = services.membership_set(actor=request.user, project=obj.project, user=obj.user,
                                             role_slug=form.cleaned_data["role"].slug)
        obj.pk = membership.pk

    def delete_model(self, request, obj):
        services.membership_remove(actor=request.user, project=obj.project, user=obj.user)


@admin.register(ApiToken)
class ApiTokenAdmin(ServiceAdmin):
    list_display = ["name", "user", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "prefix"]
    fields = ["user", "name", "expires_at"]
    actions = ["revoke"]

    def get_queryset(self, request):
        queryset = ApiToken.objects.select_related("user")
        return queryset if request.user.is_superuser else queryset.filter(user=request.user)

    def get_readonly_fields(self, request, obj=None):
        return self.fields if obj else []

    def has_add_permission(self, request) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        token, plain = services.api_token_create(actor=request.user, user=form.cleaned_data["user"],
                                                 name=form.cleaned_data["name"],
                                                 expires_at=form.cleaned_data.get("expires_at"))
        obj.pk = token.pk
        self.message_user(request, f"Token created. Copy it now, it will not be shown again: {plain}",
                          level=messages.WARNING)

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            services.api_token_revoke(actor=request.user, token=token)
        self.message_user(request, f"Revoked {queryset.count()} token(s).", level=messages.SUCCESS)
