"""The ews-ir worker: `celery -A worker worker` finds the Celery app as `worker.app`.

The app is loaded on first access, not on import, so a process that needs only some modules of this package
(the API: settings, metrics, redaction, the publisher app) does not load the task modules, exchangelib,
msal or the kombu patch.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from worker.app import app

        globals()["app"] = app  # the Celery app, not the submodule of the same name
        return app
    raise AttributeError(name)
