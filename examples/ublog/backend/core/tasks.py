import logging

from celery import shared_task

from .models import Heartbeat

log = logging.getLogger(__name__)


@shared_task
def celery_beat_debug_task():
    """Scheduled by beat every 10 seconds, run by the worker: one Heartbeat row per run."""
    beat = Heartbeat.objects.create(source="beat")
    log.info("heartbeat %s", beat.pk)
    return beat.pk


@shared_task
def debug_task():
    log.info("debug task ran")
    return "ok"
