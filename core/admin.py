"""Base for admin screens that write through services and show only what the user may see.

Django admin would otherwise save models directly and check global model permissions; here every
save and delete calls a service (so guards and rules apply), a refusal becomes an error message
and a rolled-back transaction, and visibility comes from the app's `visible_to` querysets.
"""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect

from .errors import ServiceError


class ServiceAdmin(admin.ModelAdmin):
    # Bulk delete would bypass the services; each object is deleted through them instead.
    actions = ["delete_selected_through_services"]

    def _refused(self, request, exc: ServiceError):
        self.message_user(request, f"{exc.message} ({exc.code})", level=messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceError as exc:
            return self._refused(request, exc)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ServiceError as exc:
            return self._refused(request, exc)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        if not self.has_delete_permission(request):
            actions.pop("delete_selected_through_services", None)
        return actions

    @admin.action(description="Delete selected (each through its rules)")
    def delete_selected_through_services(self, request, queryset):
        deleted, refused = 0, []
        for obj in queryset:
            try:
                self.delete_model(request, obj)
                deleted += 1
            except ServiceError as exc:
                refused.append(f"{obj}: {exc.message}")
        if deleted:
            self.message_user(request, f"Deleted {deleted} object(s).", level=messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, level=messages.ERROR)

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None) -> bool:
        # Rows come from visible_to(); a staff user sees whatever that returns.
        return self.has_module_permission(request)

    @staticmethod
    def changes_from(form) -> dict:
        return {name: form.cleaned_data[name] for name in form.changed_data if name in form.cleaned_data}
