"""Dashboard and customer-page forms of settlements. They only parse and offer choices; every rule
(rights in every project, period order, workflow, file checks) is the services' to enforce.

Choices of projects are limited to what the user may use (read for the list filter, write for
create and edit), so a project the user may not use is neither offered nor accepted."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .choices import AttachmentCategory, AttachmentState, SettlementStatus
from .selectors import projects_with_settlement_read, projects_with_settlement_write


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        # The browser's date picker sends and expects ISO dates whatever the locale.
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class ProjectChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, project) -> str:
        return f"{project.key} – {project.name}"


class SettlementFilterForm(forms.Form):
    """The list's filters (GET). Projects go by key, so filtered URLs stay readable."""

    projects = ProjectChoiceField(label=_("Projects"), queryset=None, required=False, to_field_name="key")
    status = forms.ChoiceField(label=_("Status"), required=False,
                               choices=[("", _("Any status")), *SettlementStatus.choices])
    date_from = forms.DateField(label=_("From"), required=False, widget=DateInput(),
                                help_text=_("Settlements whose period ends on or after this day."))
    date_to = forms.DateField(label=_("To"), required=False, widget=DateInput(),
                              help_text=_("Settlements whose period starts on or before this day."))

    def __init__(self, *args, user, with_projects: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if with_projects:
            self.fields["projects"].queryset = projects_with_settlement_read(user)
        else:
            del self.fields["projects"]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end of the range must not be before its start."))
            cleaned.pop("date_to", None)
        return cleaned


class SettlementForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    period_start = forms.DateField(label=_("Period start"), widget=DateInput())
    period_end = forms.DateField(label=_("Period end"), widget=DateInput())
    projects = ProjectChoiceField(label=_("Projects"), queryset=None,
                                  help_text=_("Only projects where you may write settlements are offered."))
    notes = forms.CharField(label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 6}),
                            help_text=_("Markdown: **bold**, *italic*, lists, links and tables."))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["projects"].queryset = projects_with_settlement_write(user)


class TransitionForm(forms.Form):
    status = forms.ChoiceField(choices=SettlementStatus.choices)


class LinkTicketForm(forms.Form):
    ticket = forms.CharField(label=_("Ticket"), max_length=30, help_text=_("Key (MNX-12) or id."))


class AttachmentUploadForm(forms.Form):
    file = forms.FileField(label=_("File"), help_text=_(
        "At most 200 MB: PDF, Word, OpenDocument, Excel, CSV, text, Markdown, RTF, images, ZIP or 7z."))
    category = forms.ChoiceField(label=_("Category"), choices=AttachmentCategory.choices,
                                 initial=AttachmentCategory.OTHER)
    state = forms.ChoiceField(label=_("State"), choices=AttachmentState.choices, initial=AttachmentState.DRAFT)

    def __init__(self, *args, **kwargs):
        # Field ids of their own: the page has other category/state selects.
        kwargs.setdefault("auto_id", "upload-%s")
        super().__init__(*args, **kwargs)


class AttachmentChangeForm(forms.Form):
    category = forms.ChoiceField(label=_("Category"), choices=AttachmentCategory.choices)
    state = forms.ChoiceField(label=_("State"), choices=AttachmentState.choices)


class ShareLinkForm(forms.Form):
    expires_at = forms.DateTimeField(label=_("Expires at"), required=False,
                                     widget=forms.DateTimeInput(attrs={"type": "datetime-local"},
                                                                format="%Y-%m-%dT%H:%M"),
                                     help_text=_("Leave empty for a link that does not expire."))

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "share-%s")
        super().__init__(*args, **kwargs)


class AcceptanceForm(forms.Form):
    """The customer's confirmation on the share-link page."""

    name = forms.CharField(label=_("Your name"), max_length=200)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "acceptance-%s")
        super().__init__(*args, **kwargs)
