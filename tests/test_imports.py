"""What importing asyncrun costs: the CLI and the package root must stay light (tested in subprocesses)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("grpclib", "betterproto2", "httpx", "yaml", "fsspec", "s3fs", "gcsfs", "botocore")


def loaded_modules(statement: str) -> set[str]:
    code = f"{statement}; import sys; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize(
    "statement",
    [
        "import asyncrun",
        "import asyncrun.cli",
        "import asyncrun.sdk",
        "import asyncrun.exceptions",
        "from asyncrun._proto.flyteidl import admin, core, service",
    ],
)
def test_light_imports(statement: str) -> None:
    loaded = loaded_modules(statement)
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == [], f"{statement} loads {heavy}"


def test_the_check_itself_sees_heavy_modules() -> None:
    # Guards the test above against passing vacuously.
    assert "betterproto2" in loaded_modules("from asyncrun._proto.flyteidl import core; core.Identifier")
    assert "grpclib" in loaded_modules(
        "from asyncrun._proto.flyteidl import service; service.AdminServiceStub"
    )


def test_the_client_loads_the_grpc_stack_on_first_use() -> None:
    # Only grpclib's status codes and exceptions (to map errors); no channel, HTTP/2, asyncio or messages.
    loaded = loaded_modules("import asyncrun.client")
    heavy = sorted(m for m in loaded if m.split(".")[0] in (*HEAVY, "asyncio", "h2"))
    assert heavy == ["grpclib", "grpclib.const", "grpclib.exceptions"]


def test_public_names_resolve_lazily() -> None:
    import asyncrun

    assert asyncrun.task.__module__ == "asyncrun.sdk._task"
    assert sorted(asyncrun.__all__) == list(asyncrun.__all__)
    with pytest.raises(AttributeError):
        asyncrun.nope  # noqa: B018


def test_every_error_is_public_in_asyncrun_exceptions() -> None:
    import asyncrun.exceptions
    from asyncrun import _exceptions

    assert asyncrun.exceptions.__all__ == _exceptions.__all__
    for name in _exceptions.__all__:
        cls = getattr(asyncrun.exceptions, name)
        assert issubclass(cls, asyncrun.AsyncrunError) and isinstance(cls.exit_code, int), name
