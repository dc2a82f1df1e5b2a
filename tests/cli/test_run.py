"""`asyncrun run FILE ENTITY …` locally: listing, help, inputs, outputs, errors and exit codes."""

from __future__ import annotations

import json

import pytest

from .conftest import EXAMPLES

pytestmark = pytest.mark.anyio

HELLO = str(EXAMPLES / "hello.py")
TYPES = str(EXAMPLES / "types_demo.py")


async def test_runs_the_readme_example(run_cli) -> None:
    result = await run_cli("run", HELLO, "wf", "--name", "you")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "HELLO YOU HELLO YOU"


async def test_defaults_apply(run_cli) -> None:
    result = await run_cli("run", HELLO, "wf")
    assert result.stdout.strip() == "HELLO WORLD HELLO WORLD"


async def test_runs_a_single_task_and_an_async_task(run_cli) -> None:
    assert (await run_cli("run", HELLO, "say_hello", "--name", "x")).stdout.strip() == "hello x"
    assert (await run_cli("run", HELLO, "shout", "--s", "hi", "--times", "3")).stdout.strip() == "HI HI HI"


async def test_file_help_lists_entities_with_kind_and_doc(run_cli) -> None:
    result = await run_cli("run", HELLO, "--help")
    assert result.exit_code == 0
    out = result.stdout
    assert "workflow hello.wf: Say hello to NAME, TIMES times." in out
    assert "task hello.say_hello: Greet someone." in out
    assert out.index("wf") < out.index("say_hello")  # workflows first


async def test_entity_help_shows_kind_types_defaults_descriptions(run_cli) -> None:
    result = await run_cli("run", HELLO, "wf", "--help")
    assert result.exit_code == 0
    out = result.stdout
    # quirk 3: pyflyte says "task" for a workflow here
    assert "workflow hello.wf" in out
    assert "--name" in out and "who to greet" in out and "world" in out
    assert "--times INTEGER" in out and "[default: 2]" in out


async def test_launch_plan_hides_fixed_inputs(run_cli) -> None:
    help_out = (await run_cli("run", TYPES, "summarize_lp", "--help")).stdout
    assert "launch plan summarize_short" in help_out
    assert "--values" not in help_out and "--text" in help_out
    # run-level options come before FILE; after the entity, --output is not an input of it
    result = await run_cli("run", TYPES, "summarize_lp", "--output", "json")
    assert result.exit_code == 2 and "No such option" in result.stderr


async def test_json_output_is_exactly_one_object(run_cli) -> None:
    result = await run_cli("run", "--output", "json", TYPES, "summarize_lp")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"o0": 1, "o1": 5.0, "o2": "short"}


async def test_unknown_entity_is_a_usage_error(run_cli) -> None:
    result = await run_cli("run", HELLO, "nosuch")
    assert result.exit_code == 2
    assert "'nosuch' not found in hello.py" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


async def test_missing_file(run_cli) -> None:
    result = await run_cli("run", "nosuch.py", "wf")
    assert result.exit_code == 2
    assert "nosuch.py does not exist" in result.stderr


async def test_bad_int(run_cli) -> None:
    result = await run_cli("run", HELLO, "shout", "--s", "a", "--times", "notint")
    assert result.exit_code == 2
    assert "'notint' is not a valid integer" in result.stderr


async def test_unknown_option(run_cli) -> None:
    result = await run_cli("run", HELLO, "wf", "--zzz", "1")
    assert result.exit_code == 2 and "No such option" in result.stderr


async def test_quirk_1_required_inputs_are_enforced(run_cli) -> None:
    result = await run_cli("run", HELLO, "say_hello")
    assert result.exit_code == 2
    assert "Missing option --name" in result.stderr


async def test_user_code_failure_is_one_line_with_exit_1(run_cli, write_module) -> None:
    path = write_module(
        """
        from asyncrun import task

        @task
        def fail(n: int) -> int:
            raise ValueError(f"boom {n}")
        """
    )
    result = await run_cli("run", str(path), "fail", "--n", "1")
    assert result.exit_code == 1
    assert "ValueError: boom 1" in result.stderr
    assert "Traceback" not in result.stderr
    verbose = await run_cli("-v", "run", str(path), "fail", "--n", "1")
    assert verbose.exit_code == 1 and "Traceback" in verbose.stderr


async def test_definition_error_at_import_is_one_line(run_cli, write_module) -> None:
    path = write_module(
        """
        from asyncrun import task, workflow

        @task
        def add(a: int, b: int) -> int:
            return a + b

        @workflow
        def wf(a: int) -> int:
            return add(a, 1)
        """
    )
    result = await run_cli("run", str(path), "wf", "--a", "1")
    assert result.exit_code == 2
    assert "keyword arguments" in result.stderr and f"{path.name}:10" in result.stderr
    assert "Traceback" not in result.stderr


async def test_import_error_is_one_line(run_cli, write_module) -> None:
    path = write_module("import nonexistent_pkg_xyz\n")
    result = await run_cli("run", str(path), "--help")
    assert result.exit_code == 2
    assert "No module named 'nonexistent_pkg_xyz'" in result.stderr
    assert "Traceback" not in result.stderr


async def test_quirk_2_relative_imports_work_for_help_and_run(run_cli, tmp_path) -> None:
    pkg = tmp_path / "proj" / "pkg_rel_q2"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "helpers.py").write_text(
        "from asyncrun import task\n\n@task\ndef helper(x: int) -> int:\n    return x * 2\n"
    )
    (pkg / "sub" / "wfs.py").write_text(
        "from asyncrun import workflow\nfrom .helpers import helper\n\n"
        "@workflow\ndef wf(x: int = 2) -> int:\n    return helper(x=x)\n"
    )
    # From inside the package folder, by relative path, as in the pyflyte bug.
    help_result = await run_cli("run", "wfs.py", "--help", cwd=pkg / "sub")
    assert help_result.exit_code == 0, help_result.stderr
    assert "workflow pkg_rel_q2.sub.wfs.wf" in help_result.stdout
    run_result = await run_cli("run", "wfs.py", "wf", cwd=pkg / "sub")
    assert run_result.stdout.strip() == "4"
    import sys

    # imported once, under one name
    assert "wfs" not in sys.modules and "pkg_rel_q2.sub.wfs" in sys.modules


async def test_run_help_lists_python_files_without_importing_them(run_cli, tmp_path) -> None:
    (tmp_path / "a_flow.py").write_text("raise SystemExit('imported!')\n")
    (tmp_path / "__init__.py").write_text("")
    result = await run_cli("run", "--help", cwd=tmp_path)
    assert result.exit_code == 0
    assert "a_flow.py" in result.stdout and "__init__.py" not in result.stdout


async def test_run_without_entity_prints_usage(run_cli) -> None:
    result = await run_cli("run", HELLO)
    assert result.exit_code == 2
    assert "Usage" in result.stdout + result.stderr


async def test_envvars_reach_tasks_locally(run_cli, write_module) -> None:
    path = write_module(
        """
        import os
        from asyncrun import task

        @task
        def env(key: str) -> str:
            return os.environ.get(key, "<unset>")
        """
    )
    result = await run_cli("run", "--env", "MY_KEY = v=1", str(path), "env", "--key", "MY_KEY")
    assert result.stdout.strip() == "v=1"
    bad = await run_cli("run", "--env", "NOVALUE", str(path), "env", "--key", "X")
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.stderr


async def test_overwrite_cache_recomputes(run_cli, write_module, tmp_path) -> None:
    counter = tmp_path / "calls.txt"
    path = write_module(
        f"""
        from asyncrun import task

        @task(cache=True, cache_version="1")
        def count(x: int) -> int:
            with open({str(counter)!r}, "a") as f:
                f.write("x")
            return x
        """
    )
    for _ in range(2):
        assert (await run_cli("run", str(path), "count", "--x", "1")).stdout.strip() == "1"
    assert counter.read_text() == "x"
    await run_cli("run", "--overwrite-cache", str(path), "count", "--x", "1")
    assert counter.read_text() == "xx"


async def test_remote_only_options_parse(run_cli) -> None:
    result = await run_cli(
        "run",
        "-p",
        "proj",
        "-d",
        "staging",
        "--image",
        "img:tag",
        "--service-account",
        "sa",
        "--tags",
        "t",
        "--labels",
        "k=v",
        "--labels",
        "bare",
        "--annotations",
        "a=b",
        "--max-parallelism",
        "0",
        "--disable-notifications",
        "--interruptible",
        "--cluster-pool",
        "cp",
        "--ecl",
        "l",
        "--resource-requests",
        "cpu=1,mem=2Gi",
        "--raw-output-data-prefix",
        "/tmp/x",
        "--copy",
        "all",
        "--poll-interval",
        "2",
        "--name",
        "x",
        HELLO,
        "wf",
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "HELLO WORLD HELLO WORLD"


async def test_bad_resource_requests(run_cli) -> None:
    result = await run_cli("run", "--resource-requests", "cpu=1,disk=2", HELLO, "wf")
    assert result.exit_code == 2 and "unknown resource 'disk'" in result.stderr


async def test_non_entity_attribute_is_a_usage_error(run_cli, write_module) -> None:
    path = write_module(
        """
        from asyncrun import task

        def helper(x: int) -> int:
            return x

        @task
        def real(x: int) -> int:
            return x
        """
    )
    result = await run_cli("run", str(path), "helper", "--x", "1")
    assert result.exit_code == 2
    assert "'helper' is not a task, workflow or launch plan" in result.stderr and "real" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["run", "--help"],
        ["sandbox", "--help"],
        ["sandbox", "start", "--help"],
        ["sandbox", "stop", "--help"],
        ["sandbox", "status", "--help"],
        ["sandbox", "serve", "--help"],
        ["run", "remote-launchplan", "--help"],
        ["daemon", "--help"],
        ["daemon", "start", "--help"],
        ["daemon", "stop", "--help"],
        ["daemon", "status", "--help"],
        ["daemon", "serve", "--help"],
        ["wait", "--help"],
        ["status", "--help"],
        ["watch", "--help"],
    ],
    ids=" ".join,
)
async def test_every_subcommand_has_help(run_cli, args) -> None:
    result = await run_cli(*args)
    assert result.exit_code == 0, result.stderr
    assert "Usage:" in result.stdout
