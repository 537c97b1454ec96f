import logging
import time

from django.http import JsonResponse

HEALTH_CHECK_PATH = "/api/health-check/"
log = logging.getLogger("ublog.requests")


class HealthCheckMiddleware:
    """Answers the health check first: no host validation (probes may use any Host header),
    no session, no database. It is polled every few seconds per environment, so it must be cheap."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == HEALTH_CHECK_PATH:
            return JsonResponse({"message": "OK"})
        return self.get_response(request)


class RequestLogMiddleware:
    """One log line per request (the health check never gets here)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        start = time.monotonic()
        response = self.get_response(request)
        log.info(
            "%s %s %s %.1fms",
            request.method,
            request.get_full_path(),
            response.status_code,
            (time.monotonic() - start) * 1000,
        )
        return response
