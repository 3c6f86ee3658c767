"""Admin screens for projects, tickets, time entries and expenses, restricted per project."""

from django.contrib import admin

from rbac.admin import ProjectScopedAdmin
from rbac.choices import ProjectPermission as P
from rbac.querysets import has_project_permission

from . import services
from .models import Expense, Project, Ticket, TimeEntry


def _writes_tickets_somewhere(user) -> bool:
    return Project.objects.visible_to(user, P.TICKETS_WRITE).exists()


@admin.register(Project)
class ProjectAdmin(ProjectScopedAdmin):
    list_display = ["key", "name", "is_active", "budget_hours", "budget_amount", "budget_currency"]
    list_filter = ["is_active"]
    search_fields = ["key", "name"]
    fields = ["key", "name", "description", "is_active", "budget_hours", "budget_amount", "budget_currency"]

    def get_queryset(self, request):
        return Project.objects.visible_to(request.user, "read")

    def get_readonly_fields(self, request, obj=None):
        return ["key"] if obj else []

    def has_add_permission(self, request) -> bool:
        return self.has_module_permission(request) and services.can_create_projects(request.user)

    def project_id_of(self, project) -> int:
        return project.pk

    def save_model(self, request, obj, form, change):
        if change:
            services.project_update(actor=request.user, project=Project.objects.get(pk=obj.pk),
                                    changes=self.changes_from(form))
        else:
            created = services.project_create(actor=request.user, **{f: form.cleaned_data[f] for f in self.fields})
            obj.pk = created.pk

    def delete_model(self, request, obj):
        services.project_delete(actor=request.user, project=obj)


class _ReadOnlyRecordInline(admin.TabularInline):
    """Time entries and expenses are shown on the ticket but changed on their own screens."""

    extra = 0
    can_delete = False
    show_change_link = True

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    def has_view_permission(self, request, obj=None) -> bool:
        # `obj` is the ticket; its project's readers see its records (not global model perms).
        return obj is None or has_project_permission(request.user, obj.project_id, P.TICKETS_READ)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class TimeEntryInline(_ReadOnlyRecordInline):
    model = TimeEntry
    fields = ["work_date", "user", "minutes", "activity", "billable", "description"]


class ExpenseInline(_ReadOnlyRecordInline):
    model = Expense
    fields = ["date", "user", "amount", "currency", "billable", "description"]


@admin.register(Ticket)
class TicketAdmin(ProjectScopedAdmin):
    list_display = ["key", "title", "project", "status", "priority", "assignee", "due_date"]
    list_filter = ["status", "priority", ("project", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["title", "project__key"]
    list_select_related = ["project", "assignee"]
    fields = ["project", "title", "description", "priority", "status", "assignee", "due_date"]
    inlines = [TimeEntryInline, ExpenseInline]
    change_permission = P.TICKETS_WRITE
    delete_permission = P.TICKETS_DELETE

    def get_queryset(self, request):
        return Ticket.objects.visible_to(request.user, "read").select_related("project", "assignee")

    def get_readonly_fields(self, request, obj=None):
        return ["project"] if obj else []

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "project":
            kwargs["queryset"] = Project.objects.visible_to(request.user, P.TICKETS_WRITE).filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_add_permission(self, request) -> bool:
        return self.has_module_permission(request) and _writes_tickets_somewhere(request.user)

    def save_model(self, request, obj, form, change):
        if change:
            services.ticket_update(actor=request.user, ticket=Ticket.objects.get(pk=obj.pk),
                                   changes=self.changes_from(form))
        else:
            created = services.ticket_create(actor=request.user, **{f: form.cleaned_data[f] for f in self.fields})
            obj.pk, obj.number = created.pk, created.number

    def save_related(self, request, form, formsets, change):
        # The inlines are read-only: nothing related is saved here, but the admin's change
        # message still reads what each formset did.
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def delete_model(self, request, obj):
        services.ticket_delete(actor=request.user, ticket=obj)


class RecordAdmin(ProjectScopedAdmin):
    """Time entries and expenses; `kind` names the shared service implementation."""

    kind: str
    autocomplete_fields = ["ticket"]
    change_permission = P.TICKETS_WRITE
    delete_permission = P.TICKETS_WRITE
    list_select_related = ["ticket__project", "user"]

    def get_queryset(self, request):
        return self.model.objects.visible_to(request.user, "read").select_related("ticket__project", "user")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "ticket":
            kwargs["queryset"] = Ticket.objects.visible_to(request.user, "write").select_related("project")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request):
        return {"user": request.user.pk, **super().get_changeform_initial_data(request)}

    def has_add_permission(self, request) -> bool:
        return self.has_module_permission(request) and _writes_tickets_somewhere(request.user)

    def project_id_of(self, record) -> int:
        return record.ticket.project_id

    def save_model(self, request, obj, form, change):
        kind = services.RECORD_KINDS[self.kind]
        if change:
            services.record_update(kind, actor=request.user, record=self.model.objects.get(pk=obj.pk),
                                   changes=self.changes_from(form))
        else:
            created = services.record_create(kind, actor=request.user, **{f: form.cleaned_data[f] for f in self.fields})
            obj.pk = created.pk

    def delete_model(self, request, obj):
        services.record_delete(services.RECORD_KINDS[self.kind], actor=request.user, record=obj)


@admin.register(TimeEntry)
class TimeEntryAdmin(RecordAdmin):
    kind = "time_entry"
    list_display = ["work_date", "ticket", "user", "minutes", "activity", "billable"]
    list_filter = ["billable", "activity", ("ticket__project", admin.RelatedOnlyFieldListFilter)]
    date_hierarchy = "work_date"
    fields = ["ticket", "user", "work_date", "minutes", "activity", "description", "billable"]


@admin.register(Expense)
class ExpenseAdmin(RecordAdmin):
    kind = "expense"
    list_display = ["date", "ticket", "user", "amount", "currency", "billable"]
    list_filter = ["billable", "currency", ("ticket__project", admin.RelatedOnlyFieldListFilter)]
    date_hierarchy = "date"
    fields = ["ticket", "user", "date", "description", "amount", "currency", "billable"]
