"""Dashboard forms of tickets, time entries, expenses, the Kanban status change and the ticket
list's filter bar. They check the shape of the input only; the services decide everything else
(rights, guards, model validation) and their InvalidInput becomes form errors in the views."""

from decimal import Decimal

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .choices import MIN_ENTRY_MINUTES, Activity, TicketPriority, TicketStatus
from .models import CURRENCY_CHOICES

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class UserChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, user) -> str:
        full_name = user.get_full_name()
        return f"{full_name} ({user.get_username()})" if full_name else user.get_username()


class TicketForm(forms.Form):
    """Create (with `projects`) or edit (without) a ticket. `assignees` are the users who may be
    assigned: members of the project(s) offered."""

    project = forms.ModelChoiceField(label=_("Project"), queryset=None, to_field_name="key",
                                     empty_label=_("Choose a project"))
    title = forms.CharField(label=_("Title"), max_length=255)
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 6}))
    priority = forms.ChoiceField(label=_("Priority"), choices=TicketPriority.choices, initial=TicketPriority.MEDIUM)
    status = forms.ChoiceField(label=_("Status"), choices=TicketStatus.choices, initial=TicketStatus.BACKLOG)
    assignee = UserChoiceField(label=_("Assignee"), queryset=None, required=False, empty_label=_("Nobody"),
                               help_text=_("Only members of the project can be assigned."))
    due_date = forms.DateField(label=_("Due date"), required=False, widget=DATE_INPUT)

    def __init__(self, *args, assignees, projects=None, **kwargs):
        super().__init__(*args, **kwargs)
        if projects is None:
            del self.fields["project"]
        else:
            self.fields["project"].queryset = projects
        self.fields["assignee"].queryset = assignees

    def service_values(self) -> dict:
        """The cleaned values, as the ticket services take them (the project apart)."""
        return {name: value for name, value in self.cleaned_data.items() if name != "project"}


class TimeEntryForm(forms.Form):
    # The service (the model) owns the upper bound of a day's minutes; its refusal becomes a form error.
    work_date = forms.DateField(label=_("Date"), widget=DATE_INPUT, initial=timezone.localdate)
    minutes = forms.IntegerField(label=_("Minutes"), min_value=MIN_ENTRY_MINUTES,
                                 help_text=_("Time spent, in minutes (90 = 1.5 hours)."))
    activity = forms.ChoiceField(label=_("Activity"), choices=Activity.choices, initial=Activity.DEVELOPMENT)
    description = forms.CharField(label=_("Description"), required=False)
    billable = forms.BooleanField(label=_("Billable"), required=False, initial=True)


class ExpenseForm(forms.Form):
    date = forms.DateField(label=_("Date"), widget=DATE_INPUT, initial=timezone.localdate)
    description = forms.CharField(label=_("Description"), max_length=500)
    amount = forms.DecimalField(label=_("Amount"), max_digits=12, decimal_places=2, min_value=Decimal("0.01"))
    currency = forms.ChoiceField(label=_("Currency"), choices=CURRENCY_CHOICES)
    billable = forms.BooleanField(label=_("Billable"), required=False, initial=True)


class TicketStatusForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), choices=TicketStatus.choices)


ASSIGNEE_ME, ASSIGNEE_NONE = "me", "none"


class TicketFilterForm(forms.Form):
    """The ticket list's filter bar. It labels and offers the values; the filtering itself is
    the API's TicketFilter, which reads the same parameters."""

    q = forms.CharField(label=_("Text"), required=False,
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Key, title or description")}))
    project = forms.ChoiceField(label=_("Project"), required=False)
    status = forms.ChoiceField(label=_("Status"), required=False,
                               choices=[("", _("Any status")), *TicketStatus.choices])
    priority = forms.ChoiceField(label=_("Priority"), required=False,
                                 choices=[("", _("Any priority")), *TicketPriority.choices])
    assignee = forms.ChoiceField(label=_("Assignee"), required=False)

    def __init__(self, *args, projects, assignees, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].choices = [("", _("All projects")),
                                          *((project.key, f"{project.key} · {project.name}") for project in projects)]
        self.fields["assignee"].choices = [("", _("Anyone")), (ASSIGNEE_ME, _("Me")), (ASSIGNEE_NONE, _("Nobody")),
                                           *((user.get_username(), user.get_username()) for user in assignees)]
