"""asyncrun/_betterproto.py: type hints of a message class are computed once, and are the same hints."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import typing
from dataclasses import dataclass

from asyncrun import _betterproto
from asyncrun._betterproto import betterproto2  # with the work-arounds in place
from asyncrun._proto.flyteidl import core


@dataclass(eq=False, repr=False)
class Inner(betterproto2.Message):
    value: int = betterproto2.field(1, betterproto2.TYPE_INT64)


@dataclass(eq=False, repr=False)
class Outer(betterproto2.Message):
    a: Inner | None = betterproto2.field(1, betterproto2.TYPE_MESSAGE, optional=True)
    b: Inner | None = betterproto2.field(2, betterproto2.TYPE_MESSAGE, optional=True)
    c: list[Inner] = betterproto2.field(3, betterproto2.TYPE_MESSAGE, repeated=True)
    d: Inner | None = betterproto2.field(4, betterproto2.TYPE_MESSAGE, optional=True)


def test_hints_are_computed_once_per_class(monkeypatch) -> None:
    calls: list[type] = []
    real = typing.get_type_hints

    def counting(obj, *args, **kwargs):
        calls.append(obj)
        return real(obj, *args, **kwargs)

    monkeypatch.setattr(typing, "get_type_hints", counting)
    message = Outer(a=Inner(1), b=Inner(2), c=[Inner(3), Inner(4)], d=Inner(5))
    assert Outer.parse(bytes(message)).c[1].value == 4
    assert calls.count(Outer) == 1  # betterproto2 0.10 alone: once per message-typed field (4)


def test_the_cached_hints_are_betterproto2s_own() -> None:
    for cls in (core.Literal, core.TaskTemplate, Outer):
        module = __import__(cls.__module__, fromlist=["_"])
        for name in dir(module):  # make every lazily made class, as betterproto2's own lookup needs them
            getattr(module, name)
        assert cls._type_hints() == typing.get_type_hints(cls, vars(module), {})
    assert _betterproto._HINTS[core.Literal] is core.Literal._type_hints()


def test_betterproto2_knows_its_version_without_importlib_metadata() -> None:
    import importlib.metadata

    assert betterproto2.__version__ == importlib.metadata.version("betterproto2")


def test_generated_classes_are_made_on_first_use() -> None:
    code = textwrap.dedent(
        """
        import sys
        from asyncrun._proto.flyteidl import admin, core
        assert "Identifier" not in vars(core) and "TaskSpec" not in vars(admin)
        assert "importlib.metadata" not in sys.modules
        spec = admin.TaskSpec(template=core.TaskTemplate(id=core.Identifier(name="t")))
        assert core.Identifier is vars(core)["Identifier"] is type(spec.template.id)
        assert core.Identifier.__qualname__ == "Identifier" and core.Identifier.__module__ == core.__name__
        # Parsing makes the nested classes it needs (resolved from the annotations' names).
        assert admin.TaskSpec.parse(bytes(spec)).template.id.name == "t"
        assert "Node" not in vars(core)  # nothing asked for it
        assert "Node" in dir(core) and "TaskSpec" in admin.__all__
        try:
            core.NoSuchMessage
        except AttributeError as exc:
            assert "NoSuchMessage" in str(exc)
        else:
            raise AssertionError("no AttributeError")
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_two_threads_asking_for_a_class_get_the_same_one() -> None:
    code = textwrap.dedent(
        """
        import threading
        from asyncrun._proto.flyteidl import admin
        barrier = threading.Barrier(8)
        seen = []
        def ask():
            barrier.wait()
            seen.append(admin.ExecutionCreateRequest)
        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(seen) == 8 and len({id(cls) for cls in seen}) == 1
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_field_defaults_are_made_once_and_equal_betterproto2s(recwarn) -> None:
    from tests.wire.test_generated import MESSAGE_CLASSES

    for cls in MESSAGE_CLASSES:
        message = cls()
        for name in cls._betterproto.meta_by_field_name:
            default = message._get_field_default(name)
            assert default == _betterproto._made_default(message, name), (cls, name)
            assert message._get_field_default(name) is default
    # Serializing a message with a deprecated field compares it with its default: no warning.
    assert bytes(core.Operand(var="x")) == bytes(core.Operand(var="x"))
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]
