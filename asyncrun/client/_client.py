"""`Client`: every remote operation, async, used by the CLI, the daemon and users' apps alike."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio

from .._exceptions import (
    AlreadyExistsError,
    AsyncrunError,
    AuthenticationError,
    BlobNotFoundError,
    InputError,
    NotFoundError,
    StorageError,
    UploadError,
    UsageError,
    WaitTimeoutError,
    one_error,
)
from .._proto.flyteidl import admin, core, service
from ..sdk import Directory, File, LaunchPlan, Task, Workflow
from ..sdk._files import check_local_kind
from ..sdk._foreign import ForeignEntity
from ..sdk._interface import MISSING
from . import _convert
from ._config import ClientConfig, load_config
from ._errors import map_grpc_errors
from ._retry import RetryPolicy
from ._types import (
    EntityId,
    Execution,
    ExecutionId,
    ExecutionOptions,
    Phase,
    RemoteEntity,
    check_execution_name,
)
from ._watcher import ExecutionWatcher

if TYPE_CHECKING:
    from grpclib.client import Channel

    from ._auth import Authenticator
    from ._many import AbortResult, BatchRun
    from ._nodes import NodeExecution
    from ._package import CodePackage
    from ._serialize import RegistrationPlan
    from ._signals import Signal

Progress = Callable[[str], None]

# Seconds the optional "is the code package already in the store?" lookup may take before we upload.
_STORE_CHECK_TIMEOUT = 5.0
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # FlyteAdmin's own (the k8s rand.String alphabet)
_LIST_PAGE = 100  # items per List* call (entities; runs in `watch`)


def _quiet(_: str) -> None:
    pass


CONSOLE_HEADER = "x-asyncrun-console"  # response metadata: the sandbox's console base URL


def new_execution_name() -> str:
    """A name chosen before the first CreateExecution, so a retried create cannot start two runs."""
    return "a" + "".join(random.choices(_NAME_ALPHABET, k=19))


class Client:
    """An async client of FlyteAdmin's v1 API (a real Flyte deployment or the local sandbox).

    ```python
    async with Client.from_config() as client:
        lp = await client.fetch_launch_plan("hello.wf")
        ex = await client.run(lp, {"name": "x"}, wait=True)
        print(ex.phase, ex.outputs, ex.url)
    ```
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        auth_prompt: Callable[[str], None] | None = None,
        secret_env: Mapping[str, str] | None = None,
    ) -> None:
        """`auth_prompt` receives what a sign-in flow (DeviceFlow, Pkce) asks the user to do;
        by default it is written to stderr. `secret_env` supplies the variable
        `admin.clientSecretEnvVar` names when this process's environment lacks it (the daemon)."""
        self.config = config
        self._secret_env = secret_env
        self._channel: Channel | None = None
        self._retry = RetryPolicy(unreachable_timeout=config.unreachable_timeout)
        self._auth_prompt = auth_prompt
        self._authenticator: Authenticator | None = None
        self._watcher: ExecutionWatcher | None = None
        self._announced_console = ""  # what the control plane says its console is (see `console_url`)

    @classmethod
    def from_config(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        endpoint: str | None = None,
        insecure: bool | None = None,
        project: str | None = None,
        domain: str | None = None,
        console_endpoint: str | None = None,
        unreachable_timeout: float | None = None,
        auth_prompt: Callable[[str], None] | None = None,
    ) -> Client:
        """Build a client from flytectl config, `FLYTE_PLATFORM_*`, or the local sandbox default.

        Explicit keyword arguments win over the file and the environment; `auth_prompt` receives
        sign-in instructions of interactive auth flows (default: stderr).
        """
        config = load_config(path)
        if endpoint is not None:
            config = config.with_overrides(endpoint=endpoint, source="argument", insecure=insecure)
        return cls(
            config.with_overrides(
                insecure=insecure,
                project=project,
                domain=domain,
                console_endpoint=console_endpoint,
                unreachable_timeout=unreachable_timeout,
            ),
            auth_prompt=auth_prompt,
        )

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection (the client reconnects if used again)."""
        self.close()

    def close(self) -> None:
        """`aclose` for synchronous callers (closing the channel does not block)."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    @property
    def channel(self) -> Channel:
        if self._channel is None:
            from ._channel import open_channel  # the gRPC stack (grpclib, asyncio): on first use

            self._channel = open_channel(self.config)
            from grpclib.events import RecvInitialMetadata, listen

            listen(self._channel, RecvInitialMetadata, self._on_initial_metadata)
        return self._channel

    @property
    def console_url(self) -> str:
        """Base URL of execution pages: `console.endpoint` when configured, else the console the
        control plane announces (the sandbox serves it on its own HTTP port), else derived from the
        endpoint (`<endpoint>/console`, as on a Flyte deployment)."""
        if self.config.console_endpoint or not self._announced_console:
            return self.config.console_url
        return self._announced_console

    async def _on_initial_metadata(self, event: Any) -> None:
        announced = event.metadata.get(CONSOLE_HEADER)
        if isinstance(announced, str) and announced.startswith(("http://", "https://")):
            self._announced_console = announced.rstrip("/")

    async def _admin(self, method: str, request: Any, *, read: bool, repeatable: bool = False) -> Any:
        """One AdminService call. `repeatable`: a write that is safe to send again when its answer
        did not arrive in time (DEADLINE_EXCEEDED), as reads are: a create whose name was chosen
        before the first attempt, whose ALREADY_EXISTS the caller resolves."""
        stub = service.AdminServiceStub(self.channel)
        rpc = getattr(stub, method)
        return await self._call(
            lambda metadata: rpc(request, timeout=self.config.call_timeout, metadata=metadata),
            read=read or repeatable,
        )

    async def _call(self, invoke: Callable[[dict[str, str] | None], Awaitable[Any]], *, read: bool) -> Any:
        """One RPC through the retry policy, with a bearer token when the config sets `admin.authType`."""
        endpoint = self.config.endpoint
        if not self.config.auth_type:
            try:
                return await self._retry.call(endpoint, lambda: invoke(None), read=read)
            except AuthenticationError as exc:
                raise AuthenticationError(
                    f"the control plane at {endpoint} requires authentication ({exc}); "
                    "set admin.authType in your flytectl config"
                ) from None
        if self._authenticator is None:
            from ._auth import Authenticator

            self._authenticator = Authenticator(
                self.config, lambda: self.channel, prompt=self._auth_prompt, secret_env=self._secret_env
            )
        auth = self._authenticator

        async def attempt(metadata: dict[str, str]) -> Any:
            with map_grpc_errors(endpoint):
                return await invoke(metadata)

        return await self._retry.call(endpoint, lambda: auth.call(attempt), read=read)

    def _where(self, project: str | None, domain: str | None) -> tuple[str, str]:
        return project or self.config.project, domain or self.config.domain

    # ---------------------------------------------------------------- fetch and list

    async def fetch_launch_plan(
        self, name: str, version: str | None = None, *, project: str | None = None, domain: str | None = None
    ) -> RemoteEntity:
        """A launch plan by name: the active version, else the newest; or exactly `version`."""
        project, domain = self._where(project, domain)
        if version:
            lp_id = core.Identifier(
                resource_type=core.ResourceType.LAUNCH_PLAN,
                project=project,
                domain=domain,
                name=name,
                version=version,
            )
            raw = await self._admin("get_launch_plan", admin.ObjectGetRequest(id=lp_id), read=True)
            return _convert.remote_launch_plan(raw)
        named = admin.NamedEntityIdentifier(project=project, domain=domain, name=name)
        try:
            raw = await self._admin(
                "get_active_launch_plan", admin.ActiveLaunchPlanRequest(id=named), read=True
            )
        except NotFoundError:
            newest = await self._newest("list_launch_plans", named)
            if newest is None:
                raise NotFoundError(f"no launch plan named {name} in {project}/{domain}") from None
            raw = newest
        return _convert.remote_launch_plan(raw)

    async def fetch_workflow(
        self, name: str, version: str | None = None, *, project: str | None = None, domain: str | None = None
    ) -> RemoteEntity:
        """A workflow by name (newest, or `version`); it is launched through its default launch plan."""
        project, domain = self._where(project, domain)
        version = version or await self._newest_version("list_workflows", name, project, domain)
        lp = await self.fetch_launch_plan(name, version, project=project, domain=domain)
        wf_id = EntityId("workflow", project, domain, name, version)
        return RemoteEntity(wf_id, lp.interface, lp.fixed_inputs, launch_id=lp.launch_id, raw=lp.raw)

    async def fetch_task(
        self, name: str, version: str | None = None, *, project: str | None = None, domain: str | None = None
    ) -> RemoteEntity:
        """A task by name (newest, or `version`); launched as a single-task execution."""
        project, domain = self._where(project, domain)
        version = version or await self._newest_version("list_tasks", name, project, domain)
        task_id = core.Identifier(
            resource_type=core.ResourceType.TASK, project=project, domain=domain, name=name, version=version
        )
        raw = await self._admin("get_task", admin.ObjectGetRequest(id=task_id), read=True)
        return _convert.remote_task(raw)

    async def _newest_version(self, method: str, name: str, project: str, domain: str) -> str:
        """The version of the newest `name` that `method` lists ("list_workflows", "list_tasks")."""
        named = admin.NamedEntityIdentifier(project=project, domain=domain, name=name)
        newest = await self._newest(method, named)
        if newest is None:
            kind = method.removeprefix("list_").removesuffix("s")
            raise NotFoundError(f"no {kind} named {name} in {project}/{domain}")
        return str(newest.id.version)

    async def _newest(self, method: str, named: admin.NamedEntityIdentifier) -> Any:
        request = admin.ResourceListRequest(
            id=named, limit=1, sort_by=admin.Sort(key="created_at", direction=admin.SortDirection.DESCENDING)
        )
        page = await self._admin(method, request, read=True)
        items = getattr(
            page, {"list_launch_plans": "launch_plans", "list_workflows": "workflows"}.get(method, "tasks")
        )
        return items[0] if items else None

    async def list_entities(
        self, kind: str, *, limit: int = 50, project: str | None = None, domain: str | None = None
    ) -> list[str]:
        """Names of registered entities of `kind` ("task", "workflow" or "launch plan"), sorted, all pages."""
        project, domain = self._where(project, domain)
        method = {
            "task": "list_task_ids",
            "workflow": "list_workflow_ids",
            "launch plan": "list_launch_plan_ids",
        }[kind]
        names: list[str] = []
        token = ""
        while len(names) < limit:
            request = admin.NamedEntityIdentifierListRequest(
                project=project,
                domain=domain,
                limit=min(_LIST_PAGE, limit - len(names)),
                token=token,
                sort_by=admin.Sort(key="name", direction=admin.SortDirection.ASCENDING),
            )
            page = await self._admin(method, request, read=True)
            names += [entity.name for entity in page.entities]
            token = page.token
            if not token:
                break
        return sorted(names)

    # ---------------------------------------------------------------- register

    async def register(
        self,
        entity: Task | Workflow | LaunchPlan | ForeignEntity | Any,
        *,
        root: Path | None = None,
        copy: Literal["auto", "all"] = "auto",
        image: str | None = None,
        images: Sequence[str] = (),
        destination_dir: str = ".",
        resource_requests: dict[str, str] | None = None,
        resource_limits: dict[str, str] | None = None,
        project: str | None = None,
        domain: str | None = None,
        progress: Progress = _quiet,
    ) -> RemoteEntity:
        """Package the code, upload it (unless stored already), and register everything `entity` needs.

        Tasks are registered concurrently, then workflows, then launch plans; registering an
        identical entity again counts as success. The upload runs while entities are registered
        (they only need its URL); this returns once both are done.

        `entity` may also be a flytekit task, workflow or launch plan: flytekit serializes it
        (pyflyte's specs), this client does the rest. `images` are `-i` values: one `fqn:tag`
        default image and any `name=fqn:tag` named ones (`image` is the default image alone).
        """
        from ._package import build_package, select_files
        from ._serialize import DEFAULT_IMAGE, SerializationSettings, plan_registration

        entity = _adapted(entity)
        project, domain = self._where(project, domain)
        given_images = (image, *images) if image else tuple(images)
        default_image, named_images = _split_images(given_images)
        root = root or _project_root_of(entity)
        with tempfile.TemporaryDirectory(prefix="asyncrun-pkg-") as tmp, one_error():
            async with anyio.create_task_group() as uploads:
                files = await anyio.to_thread.run_sync(select_files, root, copy)
                package = await anyio.to_thread.run_sync(build_package, root, files, Path(tmp))
                size = f"{package.size} bytes, md5 {package.md5_hex[:12]}"
                progress(f"packaged {len(package.files)} files ({size})")
                location = await self._upload_location(project, domain, package.filename, package.md5)
                if await self._already_stored(location):
                    progress("code unchanged: upload skipped")
                else:
                    uploads.start_soon(self._put_and_report, location, package, progress)
                settings = SerializationSettings(
                    project=project,
                    domain=domain,
                    image=default_image or DEFAULT_IMAGE,
                    distribution=str(location.native_url),
                    destination_dir=destination_dir,
                    images=named_images,
                    resource_requests=dict(resource_requests or {}),
                    resource_limits=dict(resource_limits or {}),
                )
                if isinstance(entity, ForeignEntity):
                    foreign = entity
                    plan = await anyio.to_thread.run_sync(
                        lambda: foreign.registration_plan(settings, code_md5=package.md5, images=given_images)
                    )
                else:
                    plan = plan_registration(entity, settings, code_md5=package.md5)
                    if default_image is None and await self._needs_an_image(plan):
                        progress(_NO_IMAGE_WARNING)
                await self._create_all(plan)
        progress(
            f"registered {len(plan.tasks)} tasks, {len(plan.workflows)} workflows and "
            f"{len(plan.launch_plans)} launch plans at version {plan.version}"
        )
        target = _convert.entity_id(plan.target)
        return RemoteEntity(
            EntityId(entity.kind, target.project, target.domain, target.name, target.version),
            entity.interface,
            dict(getattr(entity, "fixed_inputs", {})),
            launch_id=target,
            input_encoder=entity.input_literals if isinstance(entity, ForeignEntity) else None,
        )

    async def _create_all(self, plan: RegistrationPlan) -> None:
        async def create(method: str, request: Any) -> None:
            try:
                await self._admin(method, request, read=False, repeatable=True)
            except AlreadyExistsError:
                pass  # identical content under the same version: already registered

        with one_error():
            async with anyio.create_task_group() as tg:
                for task_id, task_spec in plan.tasks:
                    tg.start_soon(create, "create_task", admin.TaskCreateRequest(id=task_id, spec=task_spec))
        # Workflows and launch plans one by one, each after what it references.
        for entity_id, spec in plan.ordered:
            if isinstance(spec, admin.WorkflowSpec):
                await create("create_workflow", admin.WorkflowCreateRequest(id=entity_id, spec=spec))
            else:
                await create("create_launch_plan", admin.LaunchPlanCreateRequest(id=entity_id, spec=spec))

    async def _needs_an_image(self, plan: RegistrationPlan) -> bool:
        """Whether tasks would run in asyncrun's default image on a control plane that pulls images
        (anything but asyncrun's sandbox, which runs tasks here and ignores them)."""
        from ._serialize import DEFAULT_IMAGE

        images = {
            spec.template.container.image
            for _, spec in plan.tasks
            if spec.template and spec.template.container
        }
        if DEFAULT_IMAGE not in images:
            return False
        try:
            answer = await self._admin("get_version", admin.GetVersionRequest(), read=True)
        except AsyncrunError:
            return True  # not our sandbox, which always answers
        version = answer.control_plane_version
        # The sandbox names itself in `build` (older ones: in `version`).
        return not (version and "asyncrun-sandbox" in (version.build, version.version.split(" ")[0]))

    async def _put_and_report(self, location: Any, package: CodePackage, progress: Progress) -> None:
        await self._put(location, package.path, package.md5)
        progress(f"uploaded {package.filename}")

    async def _upload_location(
        self, project: str, domain: str, filename: str, md5: bytes, filename_root: str = ""
    ) -> Any:
        stub = service.DataProxyServiceStub(self.channel)
        request = service.CreateUploadLocationRequest(
            project=project,
            domain=domain,
            filename=filename,
            content_md5=md5,
            filename_root=filename_root,
            add_content_md5_metadata=True,
        )
        return await self._call(
            lambda metadata: stub.create_upload_location(
                request, timeout=self.config.call_timeout, metadata=metadata
            ),
            read=False,
        )

    async def _already_stored(self, location: Any) -> bool:
        # The native URL is a path (the local sandbox) or an object-store URI: when this machine can
        # read the store, an object already at the content-addressed location need not be sent again.
        from .. import _storage

        native = str(location.native_url)
        if _storage.is_local(native):
            path = _storage.local_path(native)
            return path.is_absolute() and await anyio.Path(path).is_file()
        if not _storage.credentials_configured(native):
            return False
        with anyio.move_on_after(min(self.config.call_timeout, _STORE_CHECK_TIMEOUT)):
            try:
                return await anyio.to_thread.run_sync(_storage.exists, native, abandon_on_cancel=True)
            except StorageError:
                pass  # no driver or no credentials here: the signed URL still works
        return False

    async def _put(self, location: Any, path: Path, md5: bytes) -> None:
        # httpcore (httpx's own transport) rather than httpx: the same HTTP stack, without the
        # ~40 ms httpx spends importing its command-line tool on every start.
        import ssl

        import httpcore

        data = await anyio.Path(path).read_bytes()
        headers = {"Content-MD5": base64.b64encode(md5).decode(), "Content-Length": str(len(data))}
        headers.update(dict(location.headers))  # the server's required headers win
        url = str(location.signed_url)
        # Loading the CA bundle costs ~20 ms: only for https (the sandbox hands out plain http URLs).
        context = (
            ssl.create_default_context(cafile=self.config.ca_cert_path) if url.startswith("https:") else None
        )
        try:
            async with httpcore.AsyncConnectionPool(ssl_context=context) as http:
                with anyio.fail_after(self.config.call_timeout):
                    response = await http.request("PUT", url, headers=list(headers.items()), content=data)
        except (httpcore.NetworkError, httpcore.ProtocolError, TimeoutError, OSError) as exc:
            raise UploadError(f"upload of {path.name} failed: {exc or type(exc).__name__}") from exc
        if response.status not in (200, 201):
            detail = response.content[:200].decode(errors="replace")
            raise UploadError(f"upload of {path.name} failed: HTTP {response.status} {detail}")

    async def upload_file(
        self, path: str | os.PathLike[str], *, project: str | None = None, domain: str | None = None
    ) -> str:
        """Upload a local file through the data proxy; returns its native URL (usable as a File input).

        A URI that is already remote (`s3://…`, `gs://…`) is returned as it is.
        """
        project, domain = self._where(project, domain)
        if _is_remote_uri(os.fspath(path)):
            return os.fspath(path)
        local = _local_path(path)
        check_local_kind(File(local))  # a FIFO would block the read below forever
        data = await anyio.Path(local).read_bytes()
        md5 = hashlib.md5(data).digest()
        root = base64.b32encode(md5).decode()
        location = await self._upload_location(project, domain, local.name, md5, root)
        if not await self._already_stored(location):
            await self._put(location, local, md5)
        return str(location.native_url)

    async def upload_directory(
        self, path: str | os.PathLike[str], *, project: str | None = None, domain: str | None = None
    ) -> str:
        """Upload every file of a folder under one root; returns the folder's native URL.

        A URI that is already remote (`s3://…`, `gs://…`) is returned as it is.
        """
        project, domain = self._where(project, domain)
        if _is_remote_uri(os.fspath(path)):
            return os.fspath(path)
        folder = _local_path(path)
        check_local_kind(Directory(folder))

        def digest_all() -> tuple[list[Path], list[bytes]]:
            files = sorted(p for p in folder.rglob("*") if p.is_file())
            return files, [hashlib.md5(p.read_bytes()).digest() for p in files]

        files, digests = await anyio.to_thread.run_sync(digest_all)
        root = base64.b32encode(hashlib.md5(b"".join(digests)).digest()).decode()
        native_root = ""
        for file, md5 in zip(files, digests, strict=True):
            rel = file.relative_to(folder).as_posix()
            location = await self._upload_location(project, domain, rel, md5, root)
            if not await self._already_stored(location):
                await self._put(location, file, md5)
            native_root = str(location.native_url)[: -len(rel)].rstrip("/")
        if not native_root:
            raise UsageError(f"directory {folder} is empty; nothing to upload")
        return native_root

    async def _upload_inputs(self, values: dict[str, Any], project: str, domain: str) -> dict[str, Any]:
        async def upload(value: Any) -> Any:
            # Local paths and file:// URLs are uploaded; s3://, gs://, … are passed on as they are.
            if isinstance(value, File) and not _is_remote_uri(value.path):
                return File(await self.upload_file(value.path, project=project, domain=domain))
            if isinstance(value, Directory) and not _is_remote_uri(value.path):
                return Directory(await self.upload_directory(value.path, project=project, domain=domain))
            if isinstance(value, list):
                return [await upload(item) for item in value]
            if isinstance(value, dict):
                return {key: await upload(item) for key, item in value.items()}
            return value

        return {name: await upload(value) for name, value in values.items()}

    # ---------------------------------------------------------------- launch

    async def run(
        self,
        entity: RemoteEntity | Task | Workflow | LaunchPlan | ForeignEntity | str | Any,
        inputs: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        options: ExecutionOptions | None = None,
        wait: bool = False,
        poll_interval: float | None = None,
        wait_timeout: float | None = None,
        project: str | None = None,
        domain: str | None = None,
        progress: Progress = _quiet,
        **register_options: Any,
    ) -> Execution:
        """Launch an execution and return it (finished, with outputs, if `wait`).

        `entity` is a fetched `RemoteEntity`, a launch plan name, or a local `@task`, `@workflow` or
        `LaunchPlan` (registered first), asyncrun's or flytekit's. Inputs are Python values (for a
        flytekit entity: JSON-like values or asyncrun `File`/`Directory`); local files are uploaded.
        """
        project, domain = self._where(project, domain)
        chosen_name = check_execution_name(name) if name is not None else None  # before any work
        entity = _adapted(entity)
        if isinstance(entity, str):
            entity = await self.fetch_launch_plan(entity, project=project, domain=domain)
        elif isinstance(entity, Task | Workflow | LaunchPlan | ForeignEntity):
            entity = await self.register(
                entity, project=project, domain=domain, progress=progress, **register_options
            )
        values = dict(inputs or {})
        unknown = set(values) - set(entity.interface.inputs)
        if unknown:
            fixed = unknown & set(entity.fixed_inputs)
            what = "is fixed" if fixed else "is not an input"
            raise UsageError(f"{', '.join(sorted(unknown))} {what} of {entity.id.kind} {entity.name}")
        missing = [n for n, spec in entity.interface.inputs.items() if spec.required and n not in values]
        if missing:
            raise UsageError(f"{entity.name} needs input {', '.join(missing)}")
        assert entity.launch_id is not None
        if entity.launch_id.kind == "task":
            # A task is launched without a launch plan to hold its defaults: send them (as flytekit does).
            for input_name, spec in entity.interface.inputs.items():
                if input_name not in values and spec.default is not MISSING:
                    values[input_name] = spec.default
                elif input_name not in values and not spec.required:
                    values[input_name] = None
        from ..sdk._literals import literal_map

        values = _convert.python_inputs(values, entity.interface)
        values = await self._upload_inputs(values, project, domain)
        if entity.input_encoder is not None:  # another SDK's entity: that SDK encodes its inputs
            encode = entity.input_encoder
            literals = await anyio.to_thread.run_sync(lambda: encode(values))
        else:
            literals = literal_map(values, {n: entity.interface.inputs[n].type for n in values})
        target = _convert.identifier(entity.launch_id)
        ex_name = chosen_name or new_execution_name()
        request = admin.ExecutionCreateRequest(
            project=project,
            domain=domain,
            name=ex_name,
            spec=_convert.execution_spec(target, options or ExecutionOptions()),
            inputs=literals,
        )
        ex_id = ExecutionId(project, domain, ex_name)
        attached = False
        try:
            await self._admin("create_execution", request, read=False, repeatable=True)
        except AlreadyExistsError:
            await self._check_same_execution(ex_id, target, literals)
            attached = True
        execution = await self.get_execution(ex_id, output_types=entity.interface.outputs, with_outputs=False)
        execution.attached = attached
        if wait:
            execution = await self.wait(execution, poll_interval=poll_interval, timeout=wait_timeout)
            execution.attached = attached
        return execution

    async def run_many(
        self,
        entity: RemoteEntity | Task | Workflow | LaunchPlan | ForeignEntity | str | Any,
        runs: Iterable[Mapping[str, Any]],
        *,
        max_inflight: int = 16,
        options: ExecutionOptions | None = None,
        wait: bool = False,
        wait_for: str = "terminal",
        poll_interval: float | None = None,
        wait_timeout: float | None = None,
        project: str | None = None,
        domain: str | None = None,
        progress: Progress = _quiet,
        **register_options: Any,
    ) -> list[BatchRun]:
        """Launch one execution per item of `runs` (each a dict of inputs), at most `max_inflight` at once.

        A local entity is registered once (with `register_options`, as in `run`). Each line's
        execution name is derived from the entity, its position and its inputs, so calling this
        again with the same runs attaches to the executions it started instead of starting them
        twice. A line that cannot be launched does not stop the others: the result has one
        `BatchRun` per line, in order, holding its execution or its error. With `wait`, every run
        is followed until it ends (`wait_for="running"`: until it runs); `wait_timeout` is one
        deadline for the whole batch, counted once every line has been launched, after which the
        lines still going get a `WaitTimeoutError` (their runs go on).

        Raises:
            UsageError: `runs` is empty (nothing is registered then).
        """
        from ._many import run_many

        lines = [dict(values) for values in runs]
        if not lines:
            raise UsageError("the batch is empty: give at least one set of inputs")
        project, domain = self._where(project, domain)
        entity = _adapted(entity)
        if isinstance(entity, str):
            entity = await self.fetch_launch_plan(entity, project=project, domain=domain)
        elif isinstance(entity, Task | Workflow | LaunchPlan | ForeignEntity):
            entity = await self.register(
                entity, project=project, domain=domain, progress=progress, **register_options
            )
        return await run_many(
            self,
            entity,
            lines,
            max_inflight=max_inflight,
            options=options,
            wait=wait,
            wait_for=wait_for,
            poll_interval=poll_interval,
            wait_timeout=wait_timeout,
            project=project,
            domain=domain,
        )

    async def _check_same_execution(
        self, ex_id: ExecutionId, target: core.Identifier, literals: core.LiteralMap
    ) -> None:
        existing = await self._admin(
            "get_execution",
            admin.WorkflowExecutionGetRequest(id=_convert.execution_identifier(ex_id)),
            read=True,
        )
        same_target = (
            existing.spec and existing.spec.launch_plan and bytes(existing.spec.launch_plan) == bytes(target)
        )
        theirs = (await self._literal_map(ex_id, "inputs")).literals
        same_inputs = all(
            name in theirs and bytes(theirs[name]) == bytes(lit) for name, lit in literals.literals.items()
        )
        if not (same_target and same_inputs):
            raise AlreadyExistsError(
                f"execution {ex_id.name} already exists in {ex_id.project}/{ex_id.domain} with a different "
                "entity or inputs; choose another --name"
            )

    # ---------------------------------------------------------------- observe

    async def get_execution(
        self,
        execution: Execution | ExecutionId | str,
        *,
        output_types: dict[str, Any] | None = None,
        with_outputs: bool = True,
    ) -> Execution:
        """The execution's current state; outputs (as Python values) once it has succeeded."""
        ex_id = self._execution_id(execution)
        if output_types is None and isinstance(execution, Execution):
            output_types = execution.output_types
        raw = await self._admin(
            "get_execution",
            admin.WorkflowExecutionGetRequest(id=_convert.execution_identifier(ex_id)),
            read=True,
        )
        result = _convert.execution(raw, self.console_url)
        result.output_types = output_types
        if with_outputs and result.phase is Phase.SUCCEEDED:
            result.outputs = await self.fetch_outputs(ex_id, output_types)
        return result

    async def fetch_outputs(self, ex_id: ExecutionId, types: dict[str, Any] | None = None) -> dict[str, Any]:
        """Outputs of a finished execution: typed values when `types` is known, else plain JSON values."""
        from ..sdk._literals import literal_to_jsonable, to_python

        literals = (await self._literal_map(ex_id, "outputs")).literals
        return {
            name: to_python(lit, types[name]) if types and name in types else literal_to_jsonable(lit)
            for name, lit in sorted(literals.items())
        }

    async def fetch_inputs(self, execution: Execution | ExecutionId | str) -> dict[str, Any]:
        """The run's inputs as plain JSON values."""
        from ..sdk._literals import literal_to_jsonable

        literals = (await self._literal_map(self._execution_id(execution), "inputs")).literals
        return {name: literal_to_jsonable(lit) for name, lit in sorted(literals.items())}

    async def _literal_map(self, ex_id: ExecutionId, which: Literal["inputs", "outputs"]) -> core.LiteralMap:
        """A run's inputs or outputs as literals: inline, or (FlyteAdmin leaves out maps above its
        inline limit and gives their URL) read where they are stored. The one loader of both.

        Raises:
            StorageError: the map is stored elsewhere and cannot be read from here.
        """
        data = await self._admin(
            "get_execution_data",
            admin.WorkflowExecutionGetDataRequest(id=_convert.execution_identifier(ex_id)),
            read=True,
        )
        inline = data.full_inputs if which == "inputs" else data.full_outputs
        blob = data.inputs if which == "inputs" else data.outputs
        if (inline is not None and inline.literals) or blob is None or not blob.url:
            return inline or core.LiteralMap()
        try:
            return await self._read_literal_map(blob.url)
        except (AsyncrunError, ValueError, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            # A map that is gone stays a BlobNotFoundError: callers tell "gone" from "cannot read".
            kind = BlobNotFoundError if isinstance(exc, BlobNotFoundError) else StorageError
            raise kind(f"cannot read the {which} of {ex_id.name} at {blob.url}: {reason}") from exc

    async def _read_literal_map(self, url: str) -> core.LiteralMap:
        from .. import _storage

        if url.startswith(("http://", "https://")):  # a signed URL
            import httpcore

            async with httpcore.AsyncConnectionPool() as http:
                with anyio.fail_after(self.config.call_timeout):
                    response = await http.request("GET", url)
            if response.status != 200:
                raise StorageError(f"HTTP {response.status}")
            return core.LiteralMap.parse(response.content)
        return core.LiteralMap.parse(await anyio.to_thread.run_sync(_storage.read_bytes, url))

    async def download(
        self, value: File | Directory | str, dest: str | os.PathLike[str] | None = None
    ) -> Path:
        """Copy a File/Directory output (or a blob URI: `s3://…`, `gs://…`, a path) to a local path.

        Args:
            value: what to fetch; a Directory (or a URI ending in `/`) is copied with everything in it.
            dest: where to put it; by default a new temporary folder, under the blob's own name.

        Raises:
            BlobNotFoundError: nothing is stored at the URI.
            StorageExtraError: the scheme's driver is missing (`pip install asyncrun[s3]`).
        """
        from .. import _storage

        uri = value.uri if isinstance(value, File | Directory) else value
        recursive = isinstance(value, Directory) or uri.endswith("/")
        name = uri.rstrip("/").rsplit("/", 1)[-1] or "blob"
        target = Path(dest) if dest is not None else Path(tempfile.mkdtemp(prefix="asyncrun-")) / name
        return await anyio.to_thread.run_sync(lambda: _storage.download(uri, target, recursive=recursive))

    def _execution_id(self, execution: Execution | ExecutionId | str) -> ExecutionId:
        if isinstance(execution, Execution):
            return execution.id
        if isinstance(execution, ExecutionId):
            return execution
        return ExecutionId.parse(execution, project=self.config.project, domain=self.config.domain)

    @property
    def watcher(self) -> ExecutionWatcher:
        """The watcher every wait of this client shares (batched polls)."""
        if self._watcher is None:
            self._watcher = ExecutionWatcher(self)
        return self._watcher

    async def wait(
        self,
        execution: Execution | ExecutionId | str,
        *,
        poll_interval: float | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - ends the waiting only, with WaitTimeoutError
        wait_for: str = "terminal",
        on_change: Callable[[Execution], None] | None = None,
    ) -> Execution:
        """Poll until the execution is terminal (or running, with `wait_for="running"`).

        Concurrent waits of one client share their polls (`ExecutionWatcher`): one `ListExecutions`
        per 100 runs, not one call per run. The interval starts short and grows to `poll_interval`
        (default 5 s). Raises `WaitTimeoutError` after `timeout` seconds; the execution itself goes on.
        """
        ex_id = self._execution_id(execution)
        current = execution if isinstance(execution, Execution) else None
        watcher = self.watcher
        watcher.follow(ex_id, current.output_types if current is not None else None)
        ceiling = poll_interval or 5.0
        interval = min(0.25, ceiling)
        last_phase: Phase | None = None
        try:
            with anyio.move_on_after(timeout) as scope:
                seen = watcher.last_poll
                while True:
                    seen, polled = await watcher.newer_than(seen)
                    if ex_id in polled.errors:
                        raise polled.errors[ex_id]
                    if ex_id not in polled.current:
                        continue  # followed after that poll had started
                    current = polled.current[ex_id]
                    if current.phase != last_phase:
                        last_phase = current.phase
                        if on_change is not None:
                            on_change(current)
                    if current.phase.is_terminal or (wait_for == "running" and current.phase.has_started):
                        return current
                    await anyio.sleep(interval)
                    interval = min(ceiling, interval * 1.5)
        finally:
            watcher.unfollow(ex_id)
        assert scope.cancelled_caught
        phase = current.phase if current is not None else "not seen yet"
        raise WaitTimeoutError(f"stopped waiting for {ex_id.name} after {timeout} s; it is {phase}")

    async def wait_all(
        self, executions: Iterable[Execution | ExecutionId | str], **wait_options: Any
    ) -> list[Execution]:
        """Wait for every execution; results in the order given."""
        items = list(executions)
        results: list[Execution | None] = [None] * len(items)

        async def one(index: int, ex: Execution | ExecutionId | str) -> None:
            results[index] = await self.wait(ex, **wait_options)

        with one_error():
            async with anyio.create_task_group() as tg:
                for index, ex in enumerate(items):
                    tg.start_soon(one, index, ex)
        return [r for r in results if r is not None]

    async def as_completed(
        self, executions: Iterable[Execution], **wait_options: Any
    ) -> AsyncIterator[Execution]:
        """Yield executions as they finish (waits still pending are cancelled if the caller stops early)."""
        import asyncio  # grpclib is asyncio-only, so the client is too

        waits = [asyncio.ensure_future(self.wait(ex, **wait_options)) for ex in executions]
        try:
            for finished in asyncio.as_completed(waits):
                yield await finished
        finally:
            for pending in waits:
                pending.cancel()

    async def terminate(
        self, execution: Execution | ExecutionId | str, cause: str = "terminated by asyncrun"
    ) -> None:
        """Abort a running execution."""
        ex_id = self._execution_id(execution)
        request = admin.ExecutionTerminateRequest(id=_convert.execution_identifier(ex_id), cause=cause)
        await self._admin("terminate_execution", request, read=False)

    async def relaunch(
        self,
        execution: Execution | ExecutionId | str,
        *,
        name: str | None = None,
        wait: bool = False,
        overwrite_cache: bool = False,
    ) -> Execution:
        """Start the same entity again with the same inputs and options (FlyteAdmin's
        `RelaunchExecution`: mode RELAUNCH, referencing the original); returns the new run.
        `overwrite_cache` recomputes cached tasks and stores their new outputs.

        Raises:
            NotFoundError: no such run.
        """
        ex_id = self._execution_id(execution)
        new_name = check_execution_name(name) if name else new_execution_name()
        request = admin.ExecutionRelaunchRequest(
            id=_convert.execution_identifier(ex_id), name=new_name, overwrite_cache=overwrite_cache
        )
        new_id = ExecutionId(ex_id.project, ex_id.domain, new_name)
        try:
            await self._admin("relaunch_execution", request, read=False, repeatable=True)
        except AlreadyExistsError:
            await self._check_derived_from(new_id, ex_id)  # our own create, retried after a lost reply
        types = execution.output_types if isinstance(execution, Execution) else None
        new = await self.get_execution(new_id, output_types=types, with_outputs=False)
        return await self.wait(new) if wait else new

    async def _check_derived_from(self, new_id: ExecutionId, original: ExecutionId) -> None:
        """`new_id` exists already: fine when it is a relaunch or recovery of `original` (a create
        retried after its answer was lost); otherwise the name is taken."""
        existing = await self._admin(
            "get_execution",
            admin.WorkflowExecutionGetRequest(id=_convert.execution_identifier(new_id)),
            read=True,
        )
        metadata = existing.spec.metadata if existing.spec else None
        reference = metadata.reference_execution if metadata else None
        if reference is None or reference.name != original.name or reference.project != original.project:
            raise AlreadyExistsError(
                f"execution {new_id.name} already exists in {new_id.project}/{new_id.domain}; "
                "choose another --name"
            )

    async def recover(
        self, execution: Execution | ExecutionId | str, *, name: str | None = None, wait: bool = False
    ) -> Execution:
        """Run a run again from where it failed (FlyteAdmin's `RecoverExecution`): the same entity and
        inputs, but the nodes that succeeded are not run again (they end RECOVERED with the outputs
        they had); returns the new run.

        Raises:
            NotFoundError: no such run.
        """
        ex_id = self._execution_id(execution)
        new_name = check_execution_name(name) if name else new_execution_name()
        request = admin.ExecutionRecoverRequest(
            id=_convert.execution_identifier(ex_id),
            name=new_name,
            metadata=admin.ExecutionMetadata(principal="asyncrun"),
        )
        new_id = ExecutionId(ex_id.project, ex_id.domain, new_name)
        try:
            created = await self._admin("recover_execution", request, read=False, repeatable=True)
        except AlreadyExistsError:
            await self._check_derived_from(new_id, ex_id)  # our own create, retried after a lost reply
        else:
            ref = created.id
            if ref is not None and ref.name:
                new_id = ExecutionId(ref.project, ref.domain, ref.name)
        types = execution.output_types if isinstance(execution, Execution) else None
        new = await self.get_execution(new_id, output_types=types, with_outputs=False)
        return await self.wait(new) if wait else new

    async def abort(
        self, *executions: Execution | ExecutionId | str, cause: str = "aborted by asyncrun"
    ) -> list[AbortResult]:
        """Abort runs, each on its own (concurrently): one that cannot be aborted (unknown, already
        ended) does not stop the others. Returns one `AbortResult` per run, in order, with the
        error of those that failed; the others end ABORTED with `cause`."""
        from ._many import abort_each

        ids = list(dict.fromkeys(self._execution_id(ex) for ex in executions))
        return await abort_each(self.terminate, ids, cause)

    async def logs(
        self,
        execution: Execution | ExecutionId | str,
        node: str | None = None,
        *,
        attempt: int | None = None,
        follow: bool = False,
    ) -> AsyncIterator[str]:
        """The output lines of one attempt of a task node (default: the last attempt of the last task
        node). Where the log is not readable from here (a real cluster), yields nothing: read the
        attempt's `logs` links from `nodes()` instead.

        With `follow`, waits for the node to start, yields lines as they are written and ends when
        the attempt has ended; without `attempt`, it goes on with the node's retries.

        Raises:
            NotFoundError: no such node or attempt (with `follow`: the run ended without it).
        """
        from ._logs import follow_logs, read_logs

        read = follow_logs if follow else read_logs
        async for line in read(self, self._execution_id(execution), node, attempt):
            yield line

    async def nodes(
        self, execution: Execution | ExecutionId | str, *, attempts: bool = True
    ) -> list[NodeExecution]:
        """The run's node tree: each node's phase, cache status, error, attempts (with log links)
        and children (sub-workflow, array and dynamic nodes); a launch-plan node names its child run."""
        from ._nodes import list_nodes

        return await list_nodes(self, self._execution_id(execution), attempts=attempts)

    async def signals(self, execution: Execution | ExecutionId | str) -> list[Signal]:
        """The run's gate signals, oldest first: each one's type and, once set, its value.

        A gate creates its signal when it is reached, so a run lists only the gates it got to.

        Raises:
            NotFoundError: no such run.
        """
        from ._signals import list_signals

        return await list_signals(self, self._execution_id(execution))

    async def get_signal(self, execution: Execution | ExecutionId | str, signal_id: str) -> Signal:
        """The run's signal `signal_id`.

        Raises:
            NotFoundError: no such run, or it has no such signal (yet); the message names those it has.
        """
        from ._signals import find_signal

        return await find_signal(self, self._execution_id(execution), signal_id)

    async def signal(self, execution: Execution | ExecutionId | str, signal_id: str, value: Any) -> Signal:
        """Release the gate waiting for `signal_id` (`wait_for_input`) with `value`, of the signal's type.

        Raises:
            NotFoundError: no such run, or it has no signal `signal_id` (yet).
            InputError: `value` is not of the signal's type.
            FailedPreconditionError: the signal already has a value, or the run has ended.
        """
        from ._signals import set_signal

        return await set_signal(self, self._execution_id(execution), signal_id, value)

    async def approve(self, execution: Execution | ExecutionId | str, signal_id: str) -> Signal:
        """Approve the `approve(...)` gate `signal_id`: it passes its input on and the run goes on.

        Raises as `signal`, and `InputError` when `signal_id` is not an approval.
        """
        return await self._answer(execution, signal_id, True)

    async def reject(self, execution: Execution | ExecutionId | str, signal_id: str) -> Signal:
        """Reject the `approve(...)` gate `signal_id`: the gate fails, and with it the run.

        Raises as `approve`.
        """
        return await self._answer(execution, signal_id, False)

    async def _answer(self, execution: Execution | ExecutionId | str, signal_id: str, yes: bool) -> Signal:
        ex_id = self._execution_id(execution)
        signal = await self.get_signal(ex_id, signal_id)
        if not signal.is_approval:
            raise InputError(
                f"signal {signal_id!r} of run {ex_id.name} takes {signal.type_name}, it is not an approval: "
                f"use `asyncrun signal {ex_id.name} {signal_id} VALUE`"
            )
        return await self.signal(ex_id, signal_id, yes)

    async def watch(
        self,
        executions: Iterable[Execution | ExecutionId | str],
        *,
        poll_interval: float | None = None,
        with_outputs: bool = True,
    ) -> AsyncIterator[Execution]:
        """Yield each execution when its phase changes (its current state first), until all have ended.

        Polls through the client's `ExecutionWatcher`, shared with its waits: one `ListExecutions`
        per project/domain and 100 runs a poll, the interval growing from 0.25 s to `poll_interval`
        (default 5 s). Outputs are fetched once, when a run succeeds (`with_outputs`). An unknown
        run raises `NotFoundError`.
        """
        wanted = list(executions)
        ids = list(dict.fromkeys(self._execution_id(ex) for ex in wanted))
        output_types = {ex.id: ex.output_types for ex in wanted if isinstance(ex, Execution)}
        watcher = self.watcher if with_outputs else ExecutionWatcher(self, outputs=False)
        for ex_id in ids:
            watcher.follow(ex_id, output_types.get(ex_id))
        last: dict[ExecutionId, Phase | None] = dict.fromkeys(ids)
        ceiling = poll_interval or 5.0
        interval = min(0.25, ceiling)
        try:
            seen = watcher.last_poll
            while last:
                seen, polled = await watcher.newer_than(seen)
                for ex_id in list(last):
                    if ex_id in polled.errors:
                        raise polled.errors[ex_id]
                    current = polled.current.get(ex_id)
                    if current is None or current.phase == last[ex_id]:
                        continue
                    last[ex_id] = current.phase
                    if current.phase.is_terminal:
                        del last[ex_id]
                    yield current
                if last and all(ex_id in polled.current for ex_id in last):
                    await anyio.sleep(interval)
                    interval = min(interval * 2, ceiling)
        finally:
            for ex_id in ids:
                watcher.unfollow(ex_id)

    async def list_executions(
        self,
        *,
        names: Iterable[str] = (),
        phases: Iterable[Phase | str] = (),
        since: datetime | None = None,
        entity: str | None = None,
        limit: int = 100,
        token: str = "",
        project: str | None = None,
        domain: str | None = None,
    ) -> tuple[list[Execution], str]:
        """One page of executions, newest first.

        Args:
            names: only these execution names.
            phases: only runs in one of these phases.
            since: only runs created at or after this time (timezone-aware; naive means UTC).
            entity: only runs of this launch plan (a task's or workflow's runs use its default one).
        """
        project, domain = self._where(project, domain)
        wanted = list(names)
        filters = [f"value_in(name,{';'.join(wanted)})"] if wanted else []
        wanted_phases = [Phase(str(phase).upper()).value for phase in phases]
        if wanted_phases:
            filters.append(f"value_in(phase,{';'.join(wanted_phases)})")
        if since is not None:
            when = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
            filters.append(f"gte(created_at,{when.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')})")
        if entity:
            filters.append(f"eq(launch_plan.name,{entity})")
        request = admin.ResourceListRequest(
            id=admin.NamedEntityIdentifier(project=project, domain=domain),
            limit=limit,
            token=token,
            filters="+".join(filters),
            sort_by=admin.Sort(key="created_at", direction=admin.SortDirection.DESCENDING),
        )
        page = await self._admin("list_executions", request, read=True)
        return [_convert.execution(raw, self.console_url) for raw in page.executions], page.token


_NO_IMAGE_WARNING = (
    "warning: tasks use asyncrun's default image, which no registry publishes: build one from the "
    "Dockerfile at the top of the asyncrun repository (docker build -t REGISTRY/asyncrun:TAG .), push "
    "it and pass -i REGISTRY/asyncrun:TAG"
)


def _adapted(entity: Any) -> Any:
    """A flytekit task, workflow or launch plan object as an asyncrun entity; anything else as it is.

    Checked by module name, so this never imports flytekit for asyncrun's own entities.
    """
    if type(entity).__module__.split(".")[0] == "flytekit":
        from ..interop import adapt

        return adapt(entity)
    return entity


def _split_images(images: Iterable[str]) -> tuple[str | None, dict[str, str]]:
    """`-i` values: the default image (`fqn:tag`) and named ones (`name=fqn:tag`)."""
    default: str | None = None
    named: dict[str, str] = {}
    for value in images:
        name, sep, image = value.partition("=")
        if sep:
            named[name] = image
        elif default is not None and default != value:
            raise UsageError(
                f"two default images given ({default} and {value}); name the others: name=fqn:tag"
            )
        else:
            default = value
    return default, named


def _project_root_of(entity: Task | Workflow | LaunchPlan | ForeignEntity) -> Path:
    import sys

    from ..sdk._loader import project_root

    if isinstance(entity, ForeignEntity):
        return project_root(entity.source_file)
    target = entity.workflow if isinstance(entity, LaunchPlan) else entity
    module = sys.modules.get(target.fn.__module__)
    file = getattr(module, "__file__", None)
    if not file:
        raise UsageError(f"cannot find the source file of {target.name} to package it")
    return project_root(Path(file).resolve())


def _is_remote_uri(path: str) -> bool:
    from .. import _storage

    return not _storage.is_local(path)


def _local_path(path: str | os.PathLike[str]) -> Path:
    from .. import _storage

    return _storage.local_path(os.fspath(path))
