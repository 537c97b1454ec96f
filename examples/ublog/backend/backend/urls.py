from django.contrib import admin
from django.urls import include, path

from core import views as core_views

urlpatterns = [
    # Normally answered by core.middleware.HealthCheckMiddleware; kept here so the route exists.
    path("api/health-check/", core_views.health_check, name="health-check"),
    path("api/version/", core_views.version, name="version"),
    path("api/heartbeat/", core_views.heartbeat, name="heartbeat"),
    path("api/", include("accounts.urls")),
    path("api/drf/fbv/", include("blog.urls")),
    path("admin/", admin.site.urls),
]
