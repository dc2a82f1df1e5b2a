"""Run files written with flytekit: discovery, inputs, local runs and registration through flytekit itself.

Nothing here is imported unless the user's module imported flytekit (see `sdk._foreign.ENTITY_SOURCES`).
"""

from __future__ import annotations

from ._entity import FlytekitEntity, adapt, flytekit_entities

__all__ = ("FlytekitEntity", "adapt", "flytekit_entities")
