"""Serializers of projects, tickets, time entries and expenses. They validate shape only;
the services decide rights and rules."""

from rest_framework import serializers

from rbac.api.fields import UserReferenceField
from tickets.choices import MAX_ENTRY_MINUTES, MIN_ENTRY_MINUTES
from tickets.extensions import extend_ticket_payload
from tickets.models import Expense, Project, Ticket, TimeEntry

from .fields import ProjectReferenceField, TicketReferenceField


class ProjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = ["id", "key", "name", "description", "is_active", "budget_hours", "budget_amount",
                  "budget_currency", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        # Uniqueness is checked by the service (it also handles the race); keep one message.
        extra_kwargs = {"key": {"validators": []}}


class TicketSerializer(serializers.ModelSerializer):
    project = ProjectReferenceField(help_text="Project key, e.g. MNX.")
    key = serializers.CharField(read_only=True, help_text="Ticket key, e.g. MNX-12.")
    assignee = UserReferenceField(required=False, allow_null=True, help_text="Username or user id.")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    logged_minutes = serializers.IntegerField(read_only=True, help_text="Sum of the ticket's time entries.")

    class Meta:
        model = Ticket
        fields = ["id", "key", "project", "number", "title", "description", "priority", "status", "assignee",
                  "due_date", "created_by", "created_at", "updated_at", "logged_minutes"]
        read_only_fields = ["id", "number", "created_at", "updated_at"]

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None:
            fields["project"].read_only = True
        return fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        data.update(extend_ticket_payload(instance, getattr(request, "user", None)))
        return data


class TimeEntrySerializer(serializers.ModelSerializer):
    ticket = TicketReferenceField(help_text="Ticket key (MNX-12) or id.")
    project = serializers.CharField(source="ticket.project.key", read_only=True)
    user = UserReferenceField(required=False, help_text="Who did the work; defaults to the caller.")
    minutes = serializers.IntegerField(min_value=MIN_ENTRY_MINUTES, max_value=MAX_ENTRY_MINUTES)

    class Meta:
        model = TimeEntry
        fields = ["id", "ticket", "project", "user", "work_date", "minutes", "activity", "description",
                  "billable", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class ExpenseSerializer(serializers.ModelSerializer):
    ticket = TicketReferenceField(help_text="Ticket key (MNX-12) or id.")
    project = serializers.CharField(source="ticket.project.key", read_only=True)
    user = UserReferenceField(required=False, help_text="Who incurred the cost; defaults to the caller.")

    class Meta:
        model = Expense
        fields = ["id", "ticket", "project", "user", "date", "description", "amount", "currency", "billable",
                  "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
