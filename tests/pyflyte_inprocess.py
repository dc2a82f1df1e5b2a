"""`pyflyte run …` through pyflyte's own click command, many times in one interpreter (flytekit is
imported once instead of once per process): tests compare against its exit codes and output.

    python pyflyte_inprocess.py INVOCATIONS_JSON    # [{"args": [...], "stdin": ""}, …], run in the cwd

prints one `pyflyte-result: {"code", "stdout", "output"}` line per invocation, in order; flytekit's
local cache is emptied before each, as a fresh HOME would have it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

MARKER = "pyflyte-result: "


def run(args: list[str], stdin: str = "") -> dict[str, Any]:
    """One `pyflyte ARGS` (stdin feeds its prompts): its exit code, its stdout, and everything it printed
    (stdout and stderr)."""
    from click.testing import CliRunner
    from flytekit.clis.sdk_in_container.pyflyte import main as pyflyte
    from flytekit.core.local_cache import LocalTaskCache

    LocalTaskCache.clear()
    result = CliRunner().invoke(pyflyte, args, input=stdin)
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        output += f"\n{type(result.exception).__name__}: {result.exception}"
    return {"code": result.exit_code, "stdout": result.stdout, "output": output}


def main() -> None:
    for invocation in json.loads(sys.argv[1]):
        print(f"\n{MARKER}" + json.dumps(run(invocation["args"], invocation.get("stdin", ""))), flush=True)


if __name__ == "__main__":
    main()
