"""Helpers shared by every test folder: the loopback client, the stub server, task checks.

Importable as ``support`` from any test module: the root ``tests/conftest.py``
sits in a folder without ``__init__.py``, so pytest (prepend import mode) puts
``tests/`` on ``sys.path``. Each folder's ``<folder>_support.py`` keeps only
what is specific to that folder.
"""

from __future__ import annotations

from support.clients import FAST, NO_RETRY, OTHER_TOKEN, TOKEN, make_client
from support.stub import Handler, Seen, Stub, batch_paths, json_response, request_index, serve
from support.tasks import HANG_GUARD, assert_no_leftover_tasks, leftover_tasks, settle, wait_until

__all__ = [
    "FAST",
    "HANG_GUARD",
    "NO_RETRY",
    "OTHER_TOKEN",
    "TOKEN",
    "Handler",
    "Seen",
    "Stub",
    "assert_no_leftover_tasks",
    "batch_paths",
    "json_response",
    "leftover_tasks",
    "make_client",
    "request_index",
    "serve",
    "settle",
    "wait_until",
]
