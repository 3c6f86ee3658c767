"""REST endpoints of rbac: users (superuser only), the current user, personal API tokens."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api.schema import READ_ERRORS, WRITE_ERRORS, error
from core.errors import PermissionDenied
from rbac import services
from rbac.models import ApiToken

from .permissions import IsSuperuser
from .serializers import ApiTokenCreatedSerializer, ApiTokenSerializer, MeSerializer, UserSerializer


def _created_token_response(request, *, user) -> Response:
    serializer = ApiTokenSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    token, plain = services.api_token_create(actor=request.user, user=user, **serializer.validated_data)
    token.token = plain
    return Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)


SUPERUSER_ONLY = {403: error("Not a superuser (`superuser_required`).")}
SESSION_REQUIRED_MESSAGE = ("Create API tokens while signed in (the profile page, or this endpoint with a session), "
                            "not with another token: a leaked token must not be able to mint new ones.")


@extend_schema_view(
    list=extend_schema(responses={200: UserSerializer(many=True), **READ_ERRORS, **SUPERUSER_ONLY}),
    retrieve=extend_schema(responses={200: UserSerializer, **READ_ERRORS, **SUPERUSER_ONLY}),
    create=extend_schema(responses={201: UserSerializer, **WRITE_ERRORS}),
    update=extend_schema(responses={200: UserSerializer, **WRITE_ERRORS}),
    partial_update=extend_schema(responses={200: UserSerializer, **WRITE_ERRORS}),
    destroy=extend_schema(responses={204: None, **WRITE_ERRORS},
                          description="Deactivates the user and revokes their tokens (history is kept)."),
)
class UserViewSet(viewsets.ModelViewSet):
    """Users of the installation. Superusers only, so a script can bootstrap a whole installation."""

    serializer_class = UserSerializer
    permission_classes = [IsSuperuser]
    filterset_fields = ["is_active", "is_staff", "is_superuser", "username"]

    def get_queryset(self):
        # One prefetch for the page's permissions, their content types joined in.
        permissions = Prefetch("user_permissions", queryset=Permission.objects.select_related("content_type"))
        return get_user_model().objects.prefetch_related(permissions).order_by("username")

    def perform_create(self, serializer):
        serializer.instance = services.user_create(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.user_update(actor=self.request.user, user=serializer.instance,
                                                   **serializer.validated_data)

    def perform_destroy(self, instance):
        services.user_deactivate(actor=self.request.user, user=instance)

    @extend_schema(request=ApiTokenSerializer, responses={201: ApiTokenCreatedSerializer, **WRITE_ERRORS})
    @action(detail=True, methods=["post"], url_path="tokens")
    def create_token(self, request, pk=None):
        """Issue a personal API token for this user (returned once), e.g. for a service account."""
        return _created_token_response(request, user=self.get_object())

    @extend_schema(responses={200: MeSerializer, 401: READ_ERRORS[401]})
    @action(detail=False, methods=["get"], permission_classes=[permissions.IsAuthenticated])
    def me(self, request):
        """The authenticated user, with their project memberships and permissions."""
        return Response(MeSerializer(request.user).data)


@extend_schema_view(
    create=extend_schema(responses={201: ApiTokenCreatedSerializer, **WRITE_ERRORS,
                                    403: error("Authenticated with a token, not a session (`session_required`).")}),
    destroy=extend_schema(description="Revokes the token; it stops working at once."),
)
class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                      mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The caller's own personal API tokens. The token itself is returned only on creation."""

    serializer_class = ApiTokenSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=self.request.user)

    def create(self, request, *args, **kwargs):
        """Create a personal API token (returned once). Needs a session: a request authenticated
        with a token is refused, so a leaked token cannot outlive its own revocation or expiry by
        minting another. (Superusers issuing tokens for service accounts at
        /api/users/{id}/tokens/ may use a token, so a script can bootstrap an installation.)"""
        if isinstance(request.auth, ApiToken):
            raise PermissionDenied(SESSION_REQUIRED_MESSAGE, code="session_required")
        return _created_token_response(request, user=request.user)

    def destroy(self, request, *args, **kwargs):
        services.api_token_revoke(actor=request.user, token=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
