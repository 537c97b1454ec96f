import sys

# Code runs from a read-only release folder: keep Python from writing __pycache__ there
# (set PYTHONDONTWRITEBYTECODE=1 too, so even this package's own bytecode is not attempted).
sys.dont_write_bytecode = True

# Load the Celery app with Django so that @shared_task binds to it.
from .celery_app import app as celery_app  # noqa: E402

__all__ = ("celery_app",)
