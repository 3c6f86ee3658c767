"""Serializer fields that refer to users by username (or id)."""

from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@extend_schema_field(OpenApiTypes.STR)
class UserReferenceField(serializers.RelatedField):
    default_error_messages = {
        "does_not_exist": "No active user {value!r}.",
        "invalid": "Give a username (string) or a user id (integer).",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("queryset", get_user_model().objects.filter(is_active=True))
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (str, int)) or (isinstance(data, str) and "\x00" in data):
            self.fail("invalid")
        # An integer is an id; a string is always a username (usernames may be all digits).
        lookup = {"pk": data} if isinstance(data, int) else {"username": data.strip()}
        user = self.get_queryset().filter(**lookup).first()
        if user is None:
            self.fail("does_not_exist", value=str(data))
        return user

    def to_representation(self, value) -> str:
        return value.get_username()
