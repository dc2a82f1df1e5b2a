"""asyncrun.sandbox — see DESIGN.md. Filled in by its own issue."""

from __future__ import annotations

__all__: tuple[str, ...] = ()
