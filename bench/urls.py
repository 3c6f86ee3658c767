"""The product's URLs plus the baseline views the API benchmark compares against."""

from django.urls import include, path

from config.urls import urlpatterns as product_urlpatterns

from .views import urlpatterns as baseline_urlpatterns

urlpatterns = [path("bench/", include(baseline_urlpatterns)), *product_urlpatterns]
