"""The customer page behind a share link (under /s/): the page, the acceptance, downloads."""

from django.urls import path

from . import customer_views

app_name = "customer"

urlpatterns = [
    path("<str:token>/", customer_views.settlement_page, name="settlement"),
    path("<str:token>/accept/", customer_views.settlement_accept, name="accept"),
    path("<str:token>/attachments/<int:attachment_id>/", customer_views.attachment_download, name="attachment"),
]
