"""Every exception class asyncrun defines sits in the tree drawn in `asyncrun/_exceptions.py`."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import asyncrun
from asyncrun import _exceptions
from asyncrun._exceptions import AsyncrunError

# Internal signals: raised and caught inside one module (or turned into a gRPC status / protocol
# reply at its boundary), so a user never sees them.
INTERNAL = {
    "asyncrun._execute.SystemFailure": "the task runner's own report, written to the task's error file",
    "asyncrun.cli._app.Interrupted": "Ctrl-C carried past click to main(), which exits 130",
    "asyncrun.cli._loopfree.NeedsEventLoop": "the loop-free CLI path falls back to an event loop",
    "asyncrun.client._errors.ConnectionSetupError": "grpclib's connection failure, mapped by map_grpc_errors",
    "asyncrun.engine._conditions.ConditionError": "engine: a branch condition that fails its node",
    "asyncrun.engine._engine.NodeFailed": "engine: a node's failure, recorded as the node's error",
    "asyncrun.sandbox._graphs.GraphError": "sandbox: a closure that cannot be compiled, INVALID_ARGUMENT",
    "asyncrun.daemon._protocol.ProtocolError": "a bad daemon request, answered with an error reply",
    "asyncrun.sandbox._auth.OAuthError": "an OAuth error response of the sandbox's token endpoint",
    "asyncrun.sandbox._bindings.BindingError": "sandbox: mapped to a node failure",
    "asyncrun.sandbox._blobs.BlobPathError": "sandbox: mapped to an HTTP status",
    "asyncrun.sandbox._blobs.BlobTooLargeError": "sandbox: mapped to an HTTP status",
    "asyncrun.sandbox._blobs.BlobDigestError": "sandbox: mapped to an HTTP status",
    "asyncrun.sandbox._catalog_keys.CatalogKeyError": "sandbox: mapped to a gRPC status",
    "asyncrun.sandbox._compiler.CompileError": "sandbox: mapped to INVALID_ARGUMENT",
    "asyncrun.sandbox._compiler.InputError": "sandbox: mapped to INVALID_ARGUMENT",
    "asyncrun.sandbox._db.StoreError": "sandbox: mapped to a gRPC status",
    "asyncrun.sandbox._query.QueryError": "sandbox: mapped to INVALID_ARGUMENT",
    "asyncrun.sandbox._signals.SignalConflictError": "sandbox: mapped to a gRPC status",
    "asyncrun.sandbox._signing.SignatureError": "sandbox: mapped to HTTP 403",
    "asyncrun.sandbox._signing.SignatureExpiredError": "sandbox: mapped to HTTP 403",
    "asyncrun.sandbox._task_nodes.NodeFailed": "sandbox runner: a node's failure, recorded in the store",
    "asyncrun.sandbox._templates.TemplateError": "sandbox: mapped to a task failure",
}


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(asyncrun.__path__, "asyncrun."):
        if "._proto" in info.name or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == info.name:
                found[f"{info.name}.{name}"] = value
    return found


def _tree() -> dict[str, str]:
    """Class name -> parent name, read from the drawing in `_exceptions`' docstring."""
    drawing = (_exceptions.__doc__ or "").split("```")[1]
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in drawing.splitlines():
        match = re.match(r"^([│ ├└─]*)(\w+Error)\b", line)
        if not match:
            continue
        depth = len(match.group(1))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[match.group(2)] = stack[-1][1] if stack else ""
        stack.append((depth, match.group(2)))
    return parents


def test_every_exception_class_is_in_the_tree_or_an_internal_signal() -> None:
    outside = []
    for qualname, cls in _exception_classes().items():
        if qualname.startswith("asyncrun._exceptions."):
            continue
        if issubclass(cls, AsyncrunError) or qualname not in INTERNAL:
            outside.append(qualname)
    assert outside == [], f"define these in asyncrun/_exceptions.py (and draw them in its tree): {outside}"


def test_the_drawing_matches_the_classes() -> None:
    tree = _tree()
    classes = {
        cls.__name__: cls
        for qualname, cls in _exception_classes().items()
        if qualname.startswith("asyncrun._exceptions.") and issubclass(cls, AsyncrunError)
    }
    assert set(tree) == set(classes)
    for name, parent in tree.items():
        expected = classes[name].__mro__[1].__name__
        assert (parent or "Exception") == expected, f"{name} is drawn under {parent or 'the root'}"


def test_the_walk_finds_a_class_defined_outside() -> None:
    """The check can fail: a stray class in some module is reported."""
    from asyncrun.daemon import _launch

    class StrayError(AsyncrunError):
        pass

    StrayError.__module__ = _launch.__name__
    _launch.StrayError = StrayError  # type: ignore[attr-defined]
    try:
        assert "asyncrun.daemon._launch.StrayError" in _exception_classes()
    finally:
        del _launch.StrayError  # type: ignore[attr-defined]
