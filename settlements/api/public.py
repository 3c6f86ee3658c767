"""The customer side of a share link: no login, only what the link's settlement shows.

Draft, revoked, expired or unknown links are a 404, indistinguishable from each other."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from billing.selectors import settlement_totals
from core.api.schema import error
from core.errors import NotFound
from core.throttling import CACHE_ERRORS, TooManyFailures, share_link_failures
from settlements import services
from settlements.models import SettlementAcceptance, SettlementAttachment

from .downloads import attachment_response, download_responses, served_over_asgi
from .serializers import AcceptanceSerializer, PublicSettlementSerializer

NOT_FOUND = {404: error("Unknown, revoked or expired link, or a draft settlement.")}


class ShareLinkThrottle(AnonRateThrottle):
    rate = "120/minute"

    def allow_request(self, request, view):
        # The rate lives in the cache; with Redis down the customer still gets the page.
        try:
            return super().allow_request(request, view)
        except CACHE_ERRORS:
            return True


def shared_settlement(request, token: str):
    """services.shared_settlement, with brute-force protection: a client that has tried too many
    unknown (revoked, expired, draft) links gets 429 (TooManyFailures) before the next is looked up."""
    if (verdict := share_link_failures.check(request)).blocked:
        raise TooManyFailures(verdict)
    try:
        return services.shared_settlement(token)
    except NotFound:
        if (verdict := share_link_failures.fail(request)).blocked:
            raise TooManyFailures(verdict) from None
        raise


class PublicView(APIView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [ShareLinkThrottle]


def public_payload(settlement) -> dict:
    totals = settlement_totals([settlement.pk])[settlement.pk]
    tickets = settlement.tickets.select_related("project").order_by("project__key", "number")
    acceptance = SettlementAcceptance.objects.filter(settlement=settlement).first()
    return {
        "number": settlement.display_number, "name": settlement.name, "period_start": settlement.period_start,
        "period_end": settlement.period_end, "status": settlement.status, "sent_at": settlement.sent_at,
        "paid_at": settlement.paid_at,
        "projects": sorted(settlement.projects.values_list("name", flat=True)),
        "tickets": [{"key": ticket.key, "title": ticket.title, **totals.tickets[ticket.pk].as_dict()}
                    for ticket in tickets],
        "totals": totals.total.as_dict(),
        "attachments": [{"id": a.pk, "name": a.original_name, "size": a.size, "category": a.category,
                         "state": a.state} for a in settlement.attachments.order_by("created_at", "id")],
        "acceptance": ({"name": acceptance.accepted_by_name, "accepted_at": acceptance.accepted_at}
                       if acceptance else None),
    }


class PublicSettlementView(PublicView):
    @extend_schema(responses={200: PublicSettlementSerializer, **NOT_FOUND}, auth=[])
    def get(self, request, token: str):
        """The settlement behind a share link, as the customer page shows it."""
        settlement, _ = shared_settlement(request, token)
        return Response(PublicSettlementSerializer(public_payload(settlement)).data)


class PublicAcceptView(PublicView):
    @extend_schema(request=AcceptanceSerializer, responses={201: PublicSettlementSerializer, **NOT_FOUND,
                                                            409: error("Already accepted.")}, auth=[])
    def post(self, request, token: str):
        """Record the customer's acceptance (name and time); it is logged on the settlement."""
        shared_settlement(request, token)
        serializer = AcceptanceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        acceptance = services.settlement_accept(token=token, name=serializer.validated_data["name"])
        return Response(PublicSettlementSerializer(public_payload(acceptance.settlement)).data,
                        status=status.HTTP_201_CREATED)


class PublicAttachmentView(PublicView):
    @extend_schema(responses={**download_responses(), **NOT_FOUND,
                              503: error("File storage unreachable (`storage_unavailable`).")}, auth=[])
    def get(self, request, token: str, attachment_id: int):
        """Download an attachment of the shared settlement."""
        settlement, _ = shared_settlement(request, token)
        attachment = get_object_or_404(SettlementAttachment, pk=attachment_id, settlement=settlement)
        return attachment_response(attachment, inline=request.query_params.get("inline") in ("1", "true"),
                                   asgi=served_over_asgi(request))
