"""The `asyncrun` command. Subcommands load lazily, so `asyncrun --help` imports almost nothing."""

from __future__ import annotations

from ._app import cli, main

__all__ = ("cli", "main")
