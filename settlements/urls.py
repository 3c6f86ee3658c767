"""Dashboard pages of settlements (under /dashboard/): lists, create/edit/delete, the detail page
and the HTMX actions on its sections."""

from django.urls import path

from . import views

app_name = "settlements"

settlement = "settlements/<int:pk>/"
attachment = settlement + "attachments/<int:attachment_id>/"

urlpatterns = [
    path("settlements/", views.settlement_list, name="list"),
    # The original product's name for the same view.
    path("rozliczenia/", views.settlement_list, name="list-pl"),
    path("projects/<str:key>/settlements/", views.settlement_list, name="project-list"),
    path("settlements/new/", views.settlement_create, name="create"),
    path(settlement, views.settlement_detail, name="detail"),
    path(settlement + "edit/", views.settlement_edit, name="edit"),
    path(settlement + "delete/", views.settlement_delete, name="delete"),
    path(settlement + "transition/", views.settlement_transition, name="transition"),
    path(settlement + "tickets/search/", views.ticket_search, name="ticket-search"),
    path(settlement + "tickets/link/", views.ticket_link, name="ticket-link"),
    path(settlement + "tickets/<int:ticket_id>/unlink/", views.ticket_unlink, name="ticket-unlink"),
    path(settlement + "attachments/", views.attachment_upload, name="attachment-upload"),
    path(attachment, views.attachment_update, name="attachment-update"),
    path(attachment + "delete/", views.attachment_delete, name="attachment-delete"),
    path(attachment + "download/", views.attachment_download, name="attachment-download"),
    path(attachment + "preview/", views.attachment_preview, name="attachment-preview"),
    path(settlement + "share-links/", views.share_link_create, name="share-link-create"),
    path(settlement + "share-links/<int:link_id>/revoke/", views.share_link_revoke, name="share-link-revoke"),
]
