"""`python -m asyncrun.cli` — how background services re-launch the CLI with the same Python."""

from __future__ import annotations

from . import main

main()
