"""The storage plugin kit: everything a backend for Sumatra Server needs, in one place.

- :mod:`.hookspecs`: the hooks a backend implements (``STORAGE_HOOKS``), ``hookimpl``
- :mod:`.types`: the values exchanged (``StoredRecord``, ``RecordQuery``, ...) and errors
- :mod:`.cursors`: ``[sort value, label]`` pagination cursors
- :mod:`.query`: filters, order and cursors applied to in-memory index rows
- :mod:`.datamanager`: joining the request's ``transaction`` with a DB-API connection
- :mod:`.facade`: :class:`Storage`, the typed facade the app calls
- :mod:`.plugins`: the plugin manager that loads the configured backend
- :mod:`.testing`: the contract suite, a pytest plugin
  (``pytest -p pyramid_sumatra.storage.testing --sumatra-backend=NAME``)
"""

from .facade import Storage

__all__ = ["Storage"]
