"""The ews-ir worker: `celery -A worker worker` finds the app here."""

from worker.app import app

__all__ = ["app"]
