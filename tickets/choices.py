"""Ticket and time-entry enumerations."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class TicketStatus(models.TextChoices):
    # Not planned yet.
    BACKLOG = "backlog", _("Backlog")
    # Planned, not started.
    TODO = "todo", _("To do")
    # Someone is working on it.
    IN_PROGRESS = "in_progress", _("In progress")
    # Done, waiting for review.
    REVIEW = "review", _("Review")
    # Finished.
    DONE = "done", _("Done")


class TicketPriority(models.TextChoices):
    LOW = "low", _("Low")
    MEDIUM = "medium", _("Medium")
    HIGH = "high", _("High")
    CRITICAL = "critical", _("Critical")


class Activity(models.TextChoices):
    """What a time entry was spent on; contracts' rate cards price each activity."""

    DEVELOPMENT = "development", _("Development")
    SUPPORT = "support", _("Support")
    CONSULTING = "consulting", _("Consulting")
    DESIGN = "design", _("Design")
    TESTING = "testing", _("Testing")
    PROJECT_MANAGEMENT = "project_management", _("Project management")
    MEETING = "meeting", _("Meeting")
    OTHER = "other", _("Other")


MIN_ENTRY_MINUTES = 1
MAX_ENTRY_MINUTES = 1440
