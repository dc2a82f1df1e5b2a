"""Importing this makes every generated message class now rather than on first use.

For processes that fork task processes (the sandbox's warm workers, `sandbox/_warm.py`): classes made
before the fork are shared by every child, instead of each child making the ones it needs again.
"""

from __future__ import annotations

from ._proto.flyteidl import admin, core, event, service

for _module in (admin, core, event, service):
    for _name in _module.__all__:
        getattr(_module, _name)
