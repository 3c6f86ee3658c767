"""What the base layout needs on every page: which navigation entries the user may see."""

from functools import cached_property

from rbac.choices import ProjectPermission
from rbac.querysets import project_ids_with


class Navigation:
    """Computed on first use, so pages that never render the navigation pay nothing."""

    def __init__(self, user):
        self.user = user

    @cached_property
    def settlements(self) -> bool:
        """The settlements entries are hidden (not disabled) without settlements:read somewhere."""
        if not (self.user.is_authenticated and self.user.is_active):
            return False
        project_ids = project_ids_with(self.user, ProjectPermission.SETTLEMENTS_READ)
        return project_ids is None or project_ids.exists()

    @cached_property
    def billing(self) -> bool:
        return self.user.is_staff and self.user.has_perm("billing.view")


def navigation(request) -> dict:
    return {"nav": Navigation(request.user)}
