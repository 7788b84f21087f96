"""Imports every operation module so that its `@operation` handlers are registered."""

from exchange_simulator.codec import (  # noqa: F401 - imported for their registrations
    attachments,
    create,
    directory,
    find,
    get,
    modify,
    oof,
)
