from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from .models import Heartbeat


@require_GET
def health_check(request):
    return JsonResponse({"message": "OK"})


@require_GET
def version(request):
    return JsonResponse({"version": settings.SOURCE_TAG})


@require_GET
def heartbeat(request):
    last = Heartbeat.objects.order_by("-created_on", "-id").first()
    return JsonResponse(
        {
            "count": Heartbeat.objects.count(),
            "last": last.created_on.isoformat() if last else None,
        }
    )
