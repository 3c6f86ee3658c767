"""The real URL conf plus one undocumented-by-the-matrix API route, for the test proving that a new
route without a registry entry fails the interface matrix."""

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as real_urlpatterns


class MatrixDummyView(APIView):
    def get(self, request):
        return Response({})


urlpatterns = [*real_urlpatterns, path("api/matrix-dummy/", MatrixDummyView.as_view())]
