"""Roles, project memberships, guardian object permissions on projects, and personal API tokens."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from .querysets import ApiTokenQuerySet, MembershipQuerySet


class Role(models.Model):
    """A named set of project permissions. Built-in roles have no project; custom ones belong to one."""

    slug = models.SlugField(max_length=40)
    name = models.CharField(max_length=80)
    project = models.ForeignKey(
        "tickets.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="custom_roles"
    )
    permissions = models.JSONField(default=list, help_text="Permission codes such as tickets:read.")
    is_builtin = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["slug"], condition=models.Q(project__isnull=True),
                                    name="role_builtin_slug_unique"),
            models.UniqueConstraint(fields=["project", "slug"], name="role_project_slug_unique"),
        ]

    def __str__(self) -> str:
        return self.name if self.project_id is None else f"{self.name} ({self.project})"


class Membership(models.Model):
    """One user's single role in one project; its permissions are mirrored into guardian rows."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    project = models.ForeignKey("tickets.Project", on_delete=models.CASCADE, related_name="memberships")
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="memberships")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["project_id", "user_id"]
        constraints = [models.UniqueConstraint(fields=["user", "project"], name="membership_user_project_unique")]

    def __str__(self) -> str:
        return f"{self.user} – {self.role.name} in {self.project}"


class ProjectUserObjectPermission(UserObjectPermissionBase):
    """Guardian's direct-foreign-key table for project permissions: indexed, no generic lookups."""

    content_object = models.ForeignKey("tickets.Project", on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        indexes = [models.Index(fields=["user", "permission", "content_object"])]


class ProjectGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey("tickets.Project", on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        pass


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 digest is stored; the token is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="First characters of the token, to recognise it.")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())
