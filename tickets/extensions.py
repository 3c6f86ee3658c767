"""Ticket payload extensions: other apps add per-user data to ticket payloads (API, MCP,
pages) without `tickets` importing them. Each extension annotates the ticket queryset once
(so a list stays a constant number of queries) and turns an annotated ticket into extra keys.
An extension returns {} when the user may not see its data: hidden, not merely empty."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet


@dataclass(frozen=True)
class TicketExtension:
    annotate: Callable[[QuerySet, Any], QuerySet]
    represent: Callable[[Any, Any], dict[str, Any]]


_extensions: dict[str, TicketExtension] = {}


def register_ticket_extension(name: str, extension: TicketExtension) -> None:
    _extensions[name] = extension


def annotate_tickets(queryset: QuerySet, user) -> QuerySet:
    for extension in _extensions.values():
        queryset = extension.annotate(queryset, user)
    return queryset


def extend_ticket_payload(ticket, user) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for extension in _extensions.values():
        payload.update(extension.represent(ticket, user))
    return payload
