from django.urls import path
from rest_framework.routers import SimpleRouter

from . import public, views

router = SimpleRouter()
router.register("settlements", views.SettlementViewSet, basename="settlement")

urlpatterns = [
    *router.urls,
    path("public/settlements/<str:token>/", public.PublicSettlementView.as_view(), name="public-settlement"),
    path("public/settlements/<str:token>/accept/", public.PublicAcceptView.as_view(), name="public-settlement-accept"),
    path("public/settlements/<str:token>/attachments/<int:attachment_id>/download/",
         public.PublicAttachmentView.as_view(), name="public-settlement-attachment"),
]
