"""Celery app: `celery --app=backend.celery_app:app worker -Q default` and `... beat`.
Broker and results live in the environment's own Redis (databases 1 and 2); see settings."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

app = Celery("backend")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(bind=True)
def debug_task(self):
    print("Request: {0!r}".format(self.request))
