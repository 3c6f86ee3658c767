"""Admin screens for settlements. Every change goes through the services, so the admin cannot
bypass the workflow, the freeze or the per-project rights; status changes are admin actions."""

from django import forms
from django.contrib import admin, messages

from core.admin import ServiceAdmin
from core.errors import ServiceError
from rbac.choices import ProjectPermission as P
from tickets.models import Project, Ticket

from . import services
from .choices import SettlementStatus
from .models import Settlement, SettlementAttachment, SettlementEvent, SettlementShareLink, SettlementTicket


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return True  # the parent settlement is already restricted to readers


class LinkedTicketInline(_ReadOnlyInline):
    model = SettlementTicket
    fields = ["ticket", "linked_by", "linked_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        # Tickets of projects the reader cannot read are not listed, as in the API.
        readable = Ticket.objects.visible_to(request.user, "read")
        return super().get_queryset(request).filter(ticket__in=readable).select_related("ticket__project",
                                                                                        "linked_by")


class AttachmentInline(_ReadOnlyInline):
    model = SettlementAttachment
    fields = ["original_name", "category", "state", "size", "uploaded_by", "created_at"]
    readonly_fields = fields


class ShareLinkInline(_ReadOnlyInline):
    model = SettlementShareLink
    fields = ["prefix", "created_by", "created_at", "expires_at", "revoked_at"]
    readonly_fields = fields


class EventInline(_ReadOnlyInline):
    model = SettlementEvent
    fields = ["created_at", "kind", "actor", "actor_label", "before", "after"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


def _transition_action(target: str, label: str):
    def action(modeladmin, request, queryset):
        done = 0
        for settlement in queryset:
            try:
                services.settlement_transition(actor=request.user, settlement=settlement, status=target)
                done += 1
            except ServiceError as exc:
                modeladmin.message_user(request, f"{settlement.display_number}: {exc.message}", level=messages.ERROR)
        if done:
            modeladmin.message_user(request, f"{label}: {done} settlement(s).", level=messages.SUCCESS)

    action.__name__ = f"mark_{target}"
    return admin.action(description=label)(action)


class SettlementAdminForm(forms.ModelForm):
    # The M2M has its own through model, so the form carries the choice and the service saves it.
    project_choices = forms.ModelMultipleChoiceField(queryset=Project.objects.none(), label="Projects")

    class Meta:
        model = Settlement
        fields = ["name", "period_start", "period_end", "notes"]


@admin.register(Settlement)
class SettlementAdmin(ServiceAdmin):
    list_display = ["display_number", "name", "period_start", "period_end", "status", "sent_at", "paid_at"]
    list_filter = ["status"]
    search_fields = ["name"]
    form = SettlementAdminForm
    fields = ["name", "period_start", "period_end", "project_choices", "notes"]
    inlines = [LinkedTicketInline, AttachmentInline, ShareLinkInline, EventInline]
    actions = [*ServiceAdmin.actions, _transition_action(SettlementStatus.SENT, "Send"),
               _transition_action(SettlementStatus.PAID, "Mark as paid"),
               _transition_action(SettlementStatus.DRAFT, "Revert to draft")]

    @admin.display(description="Number", ordering="number")
    def display_number(self, settlement):
        return settlement.display_number

    def get_queryset(self, request):
        return Settlement.objects.visible_to(request.user, "read")

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != SettlementStatus.DRAFT:
            return ["name", "period_start", "period_end", "projects_display", "notes"]
        return []

    def get_fields(self, request, obj=None):
        if obj is not None and obj.status != SettlementStatus.DRAFT:
            return ["name", "period_start", "period_end", "projects_display", "notes"]
        return self.fields

    @admin.display(description="Projects")
    def projects_display(self, settlement):
        return ", ".join(sorted(settlement.projects.values_list("key", flat=True)))

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if "project_choices" in form.base_fields:
            field = form.base_fields["project_choices"]
            field.queryset = Project.objects.visible_to(request.user, P.SETTLEMENTS_WRITE)
            field.initial = list(obj.projects.values_list("pk", flat=True)) if obj else []
        return form

    def has_add_permission(self, request) -> bool:
        return self.has_module_permission(request) and Project.objects.visible_to(
            request.user, P.SETTLEMENTS_WRITE).exists()

    def _may(self, request, obj, action: str) -> bool:
        if obj is None:
            return self.has_module_permission(request)
        return Settlement.objects.visible_to(request.user, action).filter(pk=obj.pk).exists()

    def has_change_permission(self, request, obj=None) -> bool:
        return self._may(request, obj, "write")

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._may(request, obj, "delete")

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in ("name", "period_start", "period_end", "notes")}
        data["projects"] = list(form.cleaned_data["project_choices"])
        if change:
            changed = {"projects" if name == "project_choices" else name for name in form.changed_data}
            changes = {name: data[name] for name in changed if name in data}
            services.settlement_update(actor=request.user, settlement=Settlement.objects.get(pk=obj.pk),
                                       changes=changes)
        else:
            obj.pk = services.settlement_create(actor=request.user, **data).pk

    def save_related(self, request, form, formsets, change):
        # Projects were saved by the service; the inlines are read-only.
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def delete_model(self, request, obj):
        services.settlement_delete(actor=request.user, settlement=obj)
