"""Writes of the rbac app: memberships (and their guardian rows), custom roles, API tokens,
global permissions. Every function is atomic and checks the actor's rights itself."""

from datetime import datetime

from django.contrib.auth.models import Permission
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied

from .choices import (
    ALL_PROJECT_PERMISSIONS,
    BUILTIN_ROLES,
    GRANTABLE_GLOBAL_PERMISSIONS,
    OWNER_ROLE,
    ProjectPermission,
)
from .models import ApiToken, Membership, ProjectUserObjectPermission, Role
from .querysets import project_permission_objects, project_permissions, require_project_permission
from .tokens import generate_token, token_digest, token_display_prefix

LAST_OWNER_MESSAGE = "A project must keep at least one Owner; make someone else Owner first."
ROLE_IN_USE_MESSAGE = "The role {role} is still given to {count} member(s); change their role first."
UNKNOWN_ROLE_MESSAGE = "Unknown role {role!r} for this project."
UNKNOWN_PERMISSION_MESSAGE = "Unknown permission {permission!r}."
BUILTIN_ROLE_MESSAGE = "Built-in roles cannot be changed."
SUPERUSER_ONLY_MESSAGE = "Only a superuser may do this."
SELF_LOCKOUT_MESSAGE = "You cannot deactivate yourself or remove your own superuser status."
CANNOT_GRANT_MESSAGE = "You cannot {what} a role with permissions you do not hold yourself: {permissions}."


def _require_project_admin(actor, project) -> None:
    require_project_permission(actor, project, ProjectPermission.PROJECT_ADMIN)


def _require_holds_all(actor, project, permissions, *, what: str) -> None:
    """No escalation: a project admin may only give, take or shape roles within their own rights
    (an Admin cannot make anyone Owner, nor demote or remove an Owner)."""
    if actor is None or actor.is_superuser:
        return
    missing = sorted(set(permissions) - project_permissions(actor, project.pk), key=ALL_PROJECT_PERMISSIONS.index)
    if missing:
        raise PermissionDenied(CANNOT_GRANT_MESSAGE.format(what=what, permissions=", ".join(missing)),
                               code="cannot_grant", extra={"permissions": missing})


def resolve_role(project, role_slug: str) -> Role:
    """A built-in role or one of the project's custom roles, by slug."""
    role = (Role.objects.filter(slug=role_slug, project__isnull=True).first()
            or Role.objects.filter(slug=role_slug, project=project).first())
    if role is None:
        raise InvalidInput.for_field("role", UNKNOWN_ROLE_MESSAGE.format(role=role_slug), code="unknown_role")
    return role


def sync_membership_permissions(*, user_id: int, project_id: int, permissions) -> None:
    """Make guardian's rows for (user, project) exactly the given permissions."""
    ProjectUserObjectPermission.objects.filter(user_id=user_id, content_object_id=project_id).delete()
    ProjectUserObjectPermission.objects.bulk_create(
        ProjectUserObjectPermission(user_id=user_id, content_object_id=project_id, permission=perm)
        for perm in project_permission_objects(permissions)
    )


def _owner_count(project_id: int) -> int:
    return Membership.objects.filter(project_id=project_id, role__slug=OWNER_ROLE,
                                     role__project__isnull=True).count()


def _lock_memberships(project_id: int) -> None:
    # Serialises membership changes of one project so the last-Owner rule holds under concurrency.
    list(Membership.objects.select_for_update().filter(project_id=project_id).values_list("pk", flat=True))


@transaction.atomic
def membership_set(*, actor, project, user, role_slug: str, check_permission: bool = True) -> Membership:
    """Give `user` the role in `project`, creating or changing the membership."""
    if check_permission:
        _require_project_admin(actor, project)
    _lock_memberships(project.pk)
    # Resolved after the lock, so a concurrent role change is seen before the rows are synced.
    role = resolve_role(project, role_slug)
    membership = Membership.objects.filter(user=user, project=project).select_related("role").first()
    if check_permission:
        _require_holds_all(actor, project, role.permissions, what="give")
        if membership is not None:
            _require_holds_all(actor, project, membership.role.permissions, what="change")
    if membership is None:
        membership = Membership.objects.create(user=user, project=project, role=role)
    elif membership.role_id != role.pk:
        was_owner = membership.role.slug == OWNER_ROLE and membership.role.project_id is None
        membership.role = role
        membership.save(update_fields=["role", "updated_at"])
        if was_owner and _owner_count(project.pk) == 0:
            raise Conflict(LAST_OWNER_MESSAGE, code="last_owner")
    sync_membership_permissions(user_id=user.pk, project_id=project.pk, permissions=role.permissions)
    return membership


@transaction.atomic
def membership_remove(*, actor, project, user) -> None:
    _require_project_admin(actor, project)
    _lock_memberships(project.pk)
    membership = Membership.objects.filter(user=user, project=project).select_related("role").first()
    if membership is None:
        raise NotFound("This user is not a member of the project.")
    _require_holds_all(actor, project, membership.role.permissions, what="remove")
    membership.delete()
    if _owner_count(project.pk) == 0:
        raise Conflict(LAST_OWNER_MESSAGE, code="last_owner")
    sync_membership_permissions(user_id=user.pk, project_id=project.pk, permissions=())


def _clean_permissions(permissions) -> list[str]:
    if not isinstance(permissions, (list, tuple)):
        raise InvalidInput.for_field("permissions", "A list of permission codes is required.")
    for permission in permissions:
        if permission not in ALL_PROJECT_PERMISSIONS:
            raise InvalidInput.for_field("permissions", UNKNOWN_PERMISSION_MESSAGE.format(permission=permission),
                                         code="unknown_permission")
    return sorted(set(permissions), key=ALL_PROJECT_PERMISSIONS.index)


@transaction.atomic
def role_create(*, actor, project, slug: str, name: str, permissions) -> Role:
    _require_project_admin(actor, project)
    permissions = _clean_permissions(permissions)
    _require_holds_all(actor, project, permissions, what="create")
    taken = InvalidInput.for_field("slug", f"A role {slug!r} already exists.", code="unique")
    if Role.objects.filter(slug=slug, project__isnull=True).exists():
        raise taken
    try:
        with transaction.atomic():
            return Role.objects.create(project=project, slug=slug, name=name, permissions=permissions)
    except IntegrityError:
        raise taken from None


@transaction.atomic
def role_update(*, actor, role: Role, name: str | None = None, permissions=None) -> Role:
    if role.project_id is None:
        raise PermissionDenied(BUILTIN_ROLE_MESSAGE, code="builtin_role")
    _require_project_admin(actor, role.project)
    _lock_memberships(role.project_id)
    role = Role.objects.select_for_update().get(pk=role.pk)
    _require_holds_all(actor, role.project, role.permissions, what="change")
    if name is not None:
        role.name = name
    if permissions is not None:
        role.permissions = _clean_permissions(permissions)
        _require_holds_all(actor, role.project, role.permissions, what="create")
    role.save(update_fields=["name", "permissions"])
    for membership in Membership.objects.filter(role=role):
        sync_membership_permissions(user_id=membership.user_id, project_id=membership.project_id,
                                    permissions=role.permissions)
    return role


@transaction.atomic
def role_delete(*, actor, role: Role) -> None:
    if role.project_id is None:
        raise PermissionDenied(BUILTIN_ROLE_MESSAGE, code="builtin_role")
    _require_project_admin(actor, role.project)
    count = Membership.objects.filter(role=role).count()
    if count:
        raise Conflict(ROLE_IN_USE_MESSAGE.format(role=role.name, count=count), code="role_in_use")
    role.delete()


def ensure_builtin_roles(*, using: str = "default") -> None:
    """Create or refresh the built-in roles (after every migrate and flush)."""
    for slug, (name, permissions) in BUILTIN_ROLES.items():
        Role.objects.using(using).update_or_create(
            slug=slug, project=None,
            defaults={"name": name, "permissions": list(permissions), "is_builtin": True},
        )


# --- API tokens ---------------------------------------------------------------------------

@transaction.atomic
def api_token_create(*, actor, user, name: str, expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """Create a token for `user`; returns the row and the plain token, which is never stored."""
    if actor.pk != user.pk and not actor.is_superuser:
        raise PermissionDenied(SUPERUSER_ONLY_MESSAGE)
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput.for_field("expires_at", "The expiry must be in the future.", code="expired")
    plain = generate_token()
    token = ApiToken.objects.create(user=user, name=name, prefix=token_display_prefix(plain),
                                    digest=token_digest(plain), expires_at=expires_at)
    return token, plain


@transaction.atomic
def api_token_revoke(*, actor, token: ApiToken) -> ApiToken:
    if actor.pk != token.user_id and not actor.is_superuser:
        raise NotFound("Not found.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def api_tokens_purge_expired(*, older_than_days: int) -> int:
    """Delete tokens that expired or were revoked more than `older_than_days` ago."""
    cutoff = timezone.now() - timezone.timedelta(days=older_than_days)
    expired = ApiToken.objects.filter(expires_at__lt=cutoff)
    revoked = ApiToken.objects.filter(revoked_at__lt=cutoff)
    deleted, _ = (expired | revoked).delete()
    return deleted


# --- Global permissions -------------------------------------------------------------------

def _global_permission_objects(codes) -> list[Permission]:
    wanted = [tuple(code.split(".", 1)) for code in codes]
    perms = [Permission.objects.get(content_type__app_label=app, codename=name) for app, name in wanted]
    return perms


@transaction.atomic
def user_set_global_permissions(*, actor, user, permissions) -> None:
    """Set the grantable global permissions (billing.*, tickets.add_project) of a user."""
    if not actor.is_superuser:
        raise PermissionDenied(SUPERUSER_ONLY_MESSAGE)
    for code in permissions:
        if code not in GRANTABLE_GLOBAL_PERMISSIONS:
            raise InvalidInput.for_field("global_permissions", UNKNOWN_PERMISSION_MESSAGE.format(permission=code),
                                         code="unknown_permission")
    grantable = _global_permission_objects(GRANTABLE_GLOBAL_PERMISSIONS)
    user.user_permissions.remove(*grantable)
    user.user_permissions.add(*_global_permission_objects(permissions))


def global_permissions_of(user) -> list[str]:
    """The grantable global permissions given directly to `user` (read fresh, not from a cache)."""
    # Iterates .all() so a prefetch of user_permissions__content_type serves whole lists.
    held = {f"{perm.content_type.app_label}.{perm.codename}" for perm in user.user_permissions.all()}
    return [code for code in GRANTABLE_GLOBAL_PERMISSIONS if code in held]


# --- Users (superuser administration over the API) ----------------------------------------

USER_FIELDS = ("username", "email", "first_name", "last_name", "is_active", "is_staff", "is_superuser")


def _require_superuser(actor) -> None:
    if not actor.is_superuser:
        raise PermissionDenied(SUPERUSER_ONLY_MESSAGE, code="superuser_required")


def _set_password(user, password: str) -> None:
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise InvalidInput.for_field("password", " ".join(exc.messages), code="weak_password") from None
    user.set_password(password)


@transaction.atomic
def user_create(*, actor, password: str | None = None, global_permissions=(), **fields):
    _require_superuser(actor)
    from django.contrib.auth import get_user_model

    user = get_user_model()(**{name: value for name, value in fields.items() if name in USER_FIELDS})
    if password:
        _set_password(user, password)
    else:
        user.set_unusable_password()
    user.save()
    user_set_global_permissions(actor=actor, user=user, permissions=global_permissions)
    return user


@transaction.atomic
def user_update(*, actor, user, password: str | None = None, global_permissions=None, **fields):
    _require_superuser(actor)
    if user.pk == actor.pk and (fields.get("is_active") is False or fields.get("is_superuser") is False):
        raise Conflict(SELF_LOCKOUT_MESSAGE, code="self_lockout")
    was_active = user.is_active
    for name, value in fields.items():
        if name in USER_FIELDS:
            setattr(user, name, value)
    if password:
        _set_password(user, password)
    user.save()
    if was_active and not user.is_active:
        _revoke_all_tokens(user)
    if global_permissions is not None:
        user_set_global_permissions(actor=actor, user=user, permissions=global_permissions)
    return user


def _revoke_all_tokens(user) -> None:
    # A deactivated user's tokens must not come back to life if the user is reactivated.
    ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())


@transaction.atomic
def user_deactivate(*, actor, user) -> None:
    """Users are deactivated, not deleted: their time entries and history must stay attributable."""
    _require_superuser(actor)
    if user.pk == actor.pk:
        raise Conflict(SELF_LOCKOUT_MESSAGE, code="self_lockout")
    user.is_active = False
    user.save(update_fields=["is_active"])
    _revoke_all_tokens(user)
