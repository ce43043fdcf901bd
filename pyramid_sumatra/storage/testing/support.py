"""Helpers of the contract suite; its fixtures (``store``, ``project``) are in the plugin
(:mod:`pyramid_sumatra.storage.testing`).

The suite talks to storage only through :class:`pyramid_sumatra.storage.Storage`
(the facade over ``pm.hook``), inside ``transaction.manager`` blocks, exactly as the
app and the CLI do. Records are built from documents by the app's own
``records.build_stored_record``, so index fields are what a real PUT would store.
"""

from __future__ import annotations

from pathlib import Path

import transaction

from pyramid_sumatra.records import build_stored_record
from pyramid_sumatra.storage import Storage
from pyramid_sumatra.storage.types import StoredRecord

#: Record documents as the Sumatra client versions 0.3 to 0.7 sent them.
EXAMPLES_DIR = Path(__file__).parent / "data"


def record(project_id: str, label: str, timestamp: str = "2024-01-01 10:00:00",
           **fields) -> StoredRecord:
    """A StoredRecord built from a minimal document, as a PUT would build it."""
    return build_stored_record(project_id, {"label": label, "timestamp": timestamp, **fields})


def put(store: Storage, *records: StoredRecord) -> None:
    """Create the records in one committed transaction."""
    with transaction.manager:
        for rec in records:
            store.put_record(rec, create=True)


def labels(page) -> list[str]:
    return [r.label for r in page.records]
