"""flytekit's own serialization of a flytekit entity, as asyncrun's registration plan.

The specs are what `pyflyte run --remote` registers (flytekit-interop.md §5): flytekit's
`get_serializable` with fast-registration settings, so tasks run `pyflyte-fast-execute … --
pyflyte-execute … --resolver flytekit.core.python_auto_container.default_task_resolver …` in
flytekit's default image (or the `-i` images, resolved by flytekit). Only the version differs: it is
asyncrun's content hash (the code digest and the specs' bytes), which, unlike flytekit's, does not
depend on the checkout's absolute path.

The flyteidl messages flytekit builds are handed to asyncrun's messages as bytes: fields our
`protos/` subset does not declare are kept as unknown fields and sent on unchanged.
"""

from __future__ import annotations

import base64
import hashlib
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from .._exceptions import DefinitionError, InputError, UsageError
from .._proto.flyteidl import admin, core

if TYPE_CHECKING:
    from ..client._serialize import RegistrationPlan, SerializationSettings
    from ._entity import FlytekitEntity

__all__ = ("image_config", "input_literals", "registration_plan")

_VERSION_TAG = b"asyncrun flytekit registration version 1\0"
_PLACEHOLDER_VERSION = "placeholder"


def image_config(images: tuple[str, ...]) -> Any:
    """flytekit's `ImageConfig` for the `-i` values, parsed as pyflyte parses them.

    Raises:
        UsageError: a value has no tag or digest, or two default images are given.
    """
    from flytekit.configuration import ImageConfig

    try:
        return ImageConfig.validate_image(None, "image", tuple(images))
    except (AssertionError, ValueError) as exc:
        raise UsageError(f"-i/--image: {' '.join(str(exc).split())}") from None


def _flytekit_settings(
    settings: SerializationSettings, images: tuple[str, ...], version: str, root: str
) -> Any:
    from flytekit.configuration import FastSerializationSettings
    from flytekit.configuration import SerializationSettings as FlytekitSettings
    from flytekit.core.resources import Resources, ResourceSpec
    from flytekit.remote.remote import _get_git_repo_url

    try:
        resources = ResourceSpec(
            requests=Resources(**settings.resource_requests), limits=Resources(**settings.resource_limits)
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--resource-requests/--resource-limits: {exc}") from None
    return FlytekitSettings(
        project=settings.project,
        domain=settings.domain,
        version=version,
        image_config=image_config(images),
        git_repo=_get_git_repo_url(root),
        env=None,
        default_resources=resources,
        fast_serialization_settings=FastSerializationSettings(
            enabled=True,
            destination_dir=settings.destination_dir,
            distribution_location=settings.distribution,
        ),
        source_root=root,
    )


def _serialize(entity: FlytekitEntity, fk_settings: Any) -> list[tuple[str, Any, Any]]:
    """(kind, id, spec) per entry to register, as flytekit's messages, in flytekit's order.

    Every workflow is followed by its default launch plan, as pyflyte registers them.
    """
    from flytekit import FlyteContextManager
    from flytekit.core.launch_plan import LaunchPlan
    from flytekit.core.workflow import WorkflowBase
    from flytekit.models.admin.workflow import WorkflowSpec
    from flytekit.models.launch_plan import LaunchPlan as LaunchPlanModel
    from flytekit.models.task import TaskSpec
    from flytekit.tools.translator import get_serializable, get_serializable_launch_plan

    mapping: OrderedDict[Any, Any] = OrderedDict()
    try:
        get_serializable(mapping, fk_settings, entity.obj, options=None)
    except Exception as exc:  # flytekit's checks of the user's entities
        raise DefinitionError(
            f"flytekit cannot serialize {entity.name}: {' '.join(str(exc).split())}"
        ) from exc
    entries: list[tuple[str, Any, Any]] = []
    context = FlyteContextManager.current_context()
    for local, model in mapping.items():
        if isinstance(model, TaskSpec):
            entries.append(("task", model.template.id.to_flyte_idl(), model.to_flyte_idl()))
        elif isinstance(model, WorkflowSpec):
            entries.append(("workflow", model.template.id.to_flyte_idl(), model.to_flyte_idl()))
            if isinstance(local, WorkflowBase):
                default = get_serializable_launch_plan(
                    OrderedDict(),
                    fk_settings,
                    LaunchPlan.get_default_launch_plan(context, local),
                    recurse_downstream=False,
                    options=None,
                )
                entries.append(("launch plan", default.id.to_flyte_idl(), default.spec.to_flyte_idl()))
        elif isinstance(model, LaunchPlanModel):
            entries.append(("launch plan", model.id.to_flyte_idl(), model.spec.to_flyte_idl()))
        # Node, BranchNode, ArrayNode and ReferenceSpec entries are not registered themselves.
    return entries


def registration_plan(
    entity: FlytekitEntity, settings: SerializationSettings, *, code_md5: bytes, images: tuple[str, ...]
) -> RegistrationPlan:
    """flytekit's specs for `entity` and everything it reaches, under asyncrun's content version."""
    root = str(_project_root(entity))
    placeholder = _serialize(entity, _flytekit_settings(settings, images, _PLACEHOLDER_VERSION, root))
    digest = hashlib.sha256(_VERSION_TAG)
    digest.update(len(code_md5).to_bytes(4, "big") + code_md5)
    for kind, ident, spec in placeholder:
        for part in (
            kind.encode(),
            ident.SerializeToString(deterministic=True),
            spec.SerializeToString(deterministic=True),
        ):
            digest.update(len(part).to_bytes(8, "big") + part)
    version = base64.urlsafe_b64encode(digest.digest()[:16]).rstrip(b"=").decode("ascii")
    entries = _serialize(entity, _flytekit_settings(settings, images, version, root))
    return _plan(entity, entries, version)


def _project_root(entity: FlytekitEntity) -> Any:
    from ..sdk._loader import project_root

    return project_root(entity.source_file)


def _plan(entity: FlytekitEntity, entries: list[tuple[str, Any, Any]], version: str) -> RegistrationPlan:
    """asyncrun's messages from flytekit's (through bytes: fields our `protos/` subset lacks are
    kept as unknown fields and sent as they are), maps sorted so equal specs are equal bytes."""
    from ..client._serialize import RegistrationPlan
    from ..client._serialize import _canonical as canonical

    tasks: list[tuple[core.Identifier, admin.TaskSpec]] = []
    workflows: list[tuple[core.Identifier, admin.WorkflowSpec]] = []
    launch_plans: list[tuple[core.Identifier, admin.LaunchPlanSpec]] = []
    ordered: list[tuple[core.Identifier, admin.WorkflowSpec | admin.LaunchPlanSpec]] = []
    seen: set[bytes] = set()
    target: core.Identifier | None = None
    for kind, ident, spec in entries:
        key = ident.SerializeToString(deterministic=True)
        if key in seen:
            continue  # a workflow reached twice (its default launch plan, once)
        seen.add(key)
        our_id = core.Identifier.parse(ident.SerializeToString())
        data = spec.SerializeToString()
        if kind == "task":
            tasks.append((our_id, canonical(admin.TaskSpec.parse(data))))
        elif kind == "workflow":
            wf_entry = (our_id, canonical(admin.WorkflowSpec.parse(data)))
            workflows.append(wf_entry)
            ordered.append(wf_entry)
        else:
            lp_entry = (our_id, canonical(admin.LaunchPlanSpec.parse(data)))
            launch_plans.append(lp_entry)
            ordered.append(lp_entry)
        if our_id.name == entity.name and _target_kind(entity.kind) == our_id.resource_type:
            target = our_id
    if target is None:
        raise DefinitionError(f"flytekit did not serialize {entity.kind} {entity.name}")
    return RegistrationPlan(
        tasks=tasks,
        workflows=workflows,
        launch_plans=launch_plans,
        target=target,
        version=version,
        ordered=ordered,
    )


def _target_kind(kind: str) -> core.ResourceType:
    # A workflow is launched through its default launch plan (same name and version).
    return core.ResourceType.TASK if kind == "task" else core.ResourceType.LAUNCH_PLAN


def input_literals(entity: FlytekitEntity, values: dict[str, Any]) -> core.LiteralMap:
    """Launch inputs as flytekit's type engine encodes them (msgpack dataclasses and all)."""
    from flytekit import FlyteContextManager
    from flytekit.core.type_engine import TypeEngine

    types = entity.obj.python_interface.inputs
    variables = entity.obj.interface.inputs
    context = FlyteContextManager.current_context()
    literals: dict[str, core.Literal] = {}
    for name, value in values.items():
        try:
            literal = TypeEngine.to_literal(context, value, types[name], variables[name].type)
        except Exception as exc:  # flytekit's TypeTransformerFailedError and the like
            raise InputError(f"input '{name}': {' '.join(str(exc).split())}") from None
        literals[name] = core.Literal.parse(literal.to_flyte_idl().SerializeToString())
    return core.LiteralMap(literals=dict(sorted(literals.items())))
