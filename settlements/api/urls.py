from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("settlements", views.SettlementViewSet, basename="settlement")

urlpatterns = router.urls
