"""docs/cli.md is generated from the commands by scripts/gen_cli_docs.py and must not go stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_cli_docs.py"
CLI_MD = ROOT / "docs" / "cli.md"


def gen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT)


def test_cli_md_is_up_to_date() -> None:
    result = gen("--check")
    assert result.returncode == 0, (
        f"{result.stderr.strip()}\n(an option or help text changed: regenerate docs/cli.md)"
    )


def test_check_fails_on_a_stale_file(tmp_path) -> None:
    stale = tmp_path / "cli.md"
    stale.write_text(CLI_MD.read_text().replace("Address to bind", "Address to listen on"))
    result = gen("--check", "--output", str(stale))
    assert result.returncode == 1
    assert "is stale; run: python scripts/gen_cli_docs.py" in result.stderr


def test_generating_writes_what_check_accepts(tmp_path) -> None:
    target = tmp_path / "cli.md"
    assert gen("--output", str(target)).returncode == 0
    assert target.read_text() == CLI_MD.read_text()
    assert gen("--check", "--output", str(target)).returncode == 0


def test_every_command_and_option_is_documented() -> None:
    from asyncrun.cli import cli
    from asyncrun.cli._app import SUBCOMMANDS
    from asyncrun.cli._sandbox import start

    text = CLI_MD.read_text()
    assert sorted(SUBCOMMANDS) == sorted(
        line.removeprefix("## asyncrun ")
        for line in text.splitlines()
        if line.startswith("## asyncrun ") and line.count(" ") == 2
    )
    for name in ("remote-launchplan", "remote-workflow", "remote-task"):
        assert f"## asyncrun run {name}\n" in text
    for option in [*start.params, *cli.params]:
        if option.name != "help":
            assert f"`{option.opts[-1]}" in text or f", {option.opts[-1]}" in text, option.opts
