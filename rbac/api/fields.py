"""Serializer fields that refer to users by username (or id)."""

from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@extend_schema_field(OpenApiTypes.STR)
class UserReferenceField(serializers.RelatedField):
    default_error_messages = {
        "does_not_exist": "No active user {value!r}.",
        "invalid": "Give a username or a user id.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("queryset", get_user_model().objects.filter(is_active=True))
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, (str, int)) or isinstance(data, bool):
            self.fail("invalid")
        text = str(data).strip()
        lookup = {"pk": int(text)} if text.isdigit() else {"username": text}
        user = self.get_queryset().filter(**lookup).first()
        if user is None:
            self.fail("does_not_exist", value=text)
        return user

    def to_representation(self, value) -> str:
        return value.get_username()
