"""Shared fixtures live in tests/fixtures/ as pytest plugins, one module per service."""

pytest_plugins = [
    "tests.fixtures.redis_server",
    "tests.fixtures.simulator",
    "tests.fixtures.celery_worker",
    "tests.fixtures.s3_server",
]
