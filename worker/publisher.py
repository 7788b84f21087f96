"""The Celery app of processes that only publish tasks by name and read their results (the API, the campaign
service it calls): the workers' settings (celeryconfig, routing by the contract's catalogue) and the same
redacted task headers, without the worker's task modules, EWS stack or kombu patch."""

from celery import Celery

app = Celery("ews_ir", amqp="worker.redaction:RedactingAMQP", set_as_current=False)
app.config_from_object("celeryconfig")
