"""Serializers of users, memberships, roles and API tokens."""

from django.contrib.auth import get_user_model
from rest_framework import serializers

from rbac.choices import GRANTABLE_GLOBAL_PERMISSIONS, ProjectPermission
from rbac.models import ApiToken, Membership, Role
from rbac.services import global_permissions_of

from .fields import UserReferenceField

User = get_user_model()


class UserSerializer(serializers.ModelSerializer):
    password = serializers.CharField(write_only=True, required=False, style={"input_type": "password"},
                                     min_length=8, max_length=128)
    global_permissions = serializers.ListField(
        child=serializers.ChoiceField(choices=GRANTABLE_GLOBAL_PERMISSIONS), required=False,
        help_text="Global permissions: billing.view, billing.manage, billing.admin, tickets.add_project.",
    )

    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "is_active", "is_staff", "is_superuser",
                  "password", "global_permissions", "date_joined", "last_login"]
        read_only_fields = ["date_joined", "last_login"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["global_permissions"] = global_permissions_of(instance)
        return data


class MeSerializer(serializers.ModelSerializer):
    memberships = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "is_superuser", "memberships"]

    def get_memberships(self, user) -> list[dict]:
        rows = Membership.objects.filter(user=user).select_related("project", "role")
        return [{"project": m.project.key, "role": m.role.slug, "permissions": m.role.permissions} for m in rows]


class MembershipSerializer(serializers.ModelSerializer):
    user = UserReferenceField(help_text="Username or user id.")
    role = serializers.SlugField(help_text="Built-in role (owner, admin, member, viewer) or a custom role slug.")
    permissions = serializers.SerializerMethodField()

    class Meta:
        model = Membership
        fields = ["user", "role", "permissions", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["role"] = instance.role.slug
        return data

    def get_permissions(self, membership) -> list[str]:
        return list(membership.role.permissions)


class MembershipRoleSerializer(serializers.Serializer):
    role = serializers.SlugField()


class RoleSerializer(serializers.ModelSerializer):
    permissions = serializers.ListField(child=serializers.ChoiceField(choices=ProjectPermission.choices))
    project = serializers.SerializerMethodField()

    class Meta:
        model = Role
        fields = ["id", "slug", "name", "permissions", "is_builtin", "project"]
        read_only_fields = ["id", "is_builtin"]

    def get_project(self, role) -> str | None:
        return role.project.key if role.project_id else None


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at", "is_active"]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at", "is_active"]


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The token itself. Shown only in this response.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
