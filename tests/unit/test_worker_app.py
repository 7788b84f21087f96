"""The Celery app's configuration and routing: JSON only, no-loss settings, one visibility timeout, queues;
the contract's catalogue and the worker's registered tasks agree."""

from contract.actions import ACTIONS
from worker.app import app
from worker.routing import route_task
from worker.settings import get_settings


def test_no_loss_and_json_only_configuration():
    conf = app.conf
    assert conf.accept_content == ["json"]
    assert (conf.task_serializer, conf.result_serializer) == ("json", "json")
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_send_task_events and conf.task_send_sent_event
    assert conf.result_expires == 7 * 24 * 3600


def test_one_visibility_timeout_longer_than_any_countdown():
    conf = app.conf
    timeout = conf.broker_transport_options["visibility_timeout"]
    assert conf.result_backend_transport_options["visibility_timeout"] == timeout
    assert get_settings().max_countdown_s < timeout


def test_routing_by_task_name():
    assert route_task("campaign.dispatch", (), {}, {}) == {"queue": "campaigns"}
    assert route_task("ews.delete_email", (), {}, {}) == {"queue": "containment"}
    assert route_task("ews.not_an_action", (), {}, {}) is None
    queues = {"enrichment", "containment", "notification", "campaigns"}
    assert {q.name for q in app.conf.task_queues} == queues


def test_the_catalogue_and_the_registered_tasks_agree():
    """Same names, same queues: the API lists, checks and routes actions from the catalogue alone."""
    app.loader.import_default_modules()
    registered = {
        name: task.queue
        for name, task in app.tasks.items()
        if name.startswith("ews.") and task.__module__.startswith("tasks.")
    }
    assert registered == {contract.task_name: contract.queue for contract in ACTIONS.values()}
    for name, queue in registered.items():
        assert route_task(name, (), {}, {}) == {"queue": queue}
