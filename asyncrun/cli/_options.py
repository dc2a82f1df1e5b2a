"""Run-level options (before FILE), as in pyflyte run, parsed into one frozen `RunParams`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncclick as click

from ._wait_options import wait_options

if TYPE_CHECKING:
    from collections.abc import Callable

_RESOURCE_KEYS = ("cpu", "mem", "gpu", "ephemeral_storage")


@dataclass(frozen=True)
class RunParams:
    """Everything given before FILE. Remote-only options are carried for `--remote`."""

    project: str | None = None  # None: the client config's default (`client._config.default_scope`)
    domain: str | None = None
    destination_dir: str = "."
    copy: str = "auto"
    images: tuple[str, ...] = ()
    service_account: str = ""
    wait: bool = False
    poll_interval: float | None = None
    dump_snippet: bool = False
    overwrite_cache: bool = False
    interruptible: bool | None = None
    envvars: dict[str, str] = field(default_factory=dict)
    resource_requests: dict[str, str] = field(default_factory=dict)
    resource_limits: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    name: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    raw_output_data_prefix: str | None = None
    max_parallelism: int | None = None  # None means unset, which is not 0 (unlimited)
    disable_notifications: bool = False
    remote: bool = False
    limit: int = 50
    cluster_pool: str = ""
    execution_cluster_label: str = ""
    output: str = "human"
    wait_for: str = "terminal"
    wait_timeout: float | None = None
    abort_on_timeout: bool = False
    no_daemon: bool = False
    batch: str | None = None
    max_inflight: int = 16

    def register_options(self) -> dict[str, Any]:
        """What `Client.register` is given for a local entity (`Client.run`/`run_many` keywords),
        the same for one run and for `--batch`."""
        return {
            "copy": "all" if self.copy == "all" else "auto",
            "images": self.images,
            "destination_dir": self.destination_dir,
            "resource_requests": self.resource_requests,
            "resource_limits": self.resource_limits,
        }

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> RunParams:
        copy = options["copy"]
        if options.pop("copy_all"):
            copy = "all"
        return cls(
            project=options["project"],
            domain=options["domain"],
            destination_dir=options["destination_dir"],
            copy=copy.lower(),
            images=tuple(options["image"]),
            service_account=options["service_account"],
            wait=options["wait"],
            poll_interval=options["poll_interval"],
            dump_snippet=options["dump_snippet"],
            overwrite_cache=options["overwrite_cache"],
            interruptible=options["interruptible"],
            envvars=dict(options["envvars"]),
            resource_requests=options["resource_requests"] or {},
            resource_limits=options["resource_limits"] or {},
            tags=tuple(options["tags"]),
            name=options["name"],
            labels=dict(options["labels"]),
            annotations=dict(options["annotations"]),
            raw_output_data_prefix=options["raw_output_data_prefix"],
            max_parallelism=options["max_parallelism"],
            disable_notifications=options["disable_notifications"],
            remote=options["remote"],
            limit=options["limit"],
            cluster_pool=options["cluster_pool"],
            execution_cluster_label=options["execution_cluster_label"],
            output=options["output"],
            wait_for=options["wait_for"],
            wait_timeout=options["wait_timeout"],
            abort_on_timeout=options["abort_on_timeout"],
            no_daemon=options["no_daemon"],
            batch=options["batch"],
            max_inflight=options["max_inflight"],
        )


class KeyValue(click.ParamType[tuple[str, str]]):
    """`K=V` (split on the first `=`, both sides stripped); with `bare_ok`, a bare `K` means `K=""`."""

    name = "KEY=VALUE"

    def __init__(self, *, bare_ok: bool = False) -> None:
        self.bare_ok = bare_ok

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        key, sep, val = str(value).partition("=")
        if not sep and not self.bare_ok:
            self.fail(f"{value!r} is not KEY=VALUE", param, ctx)
        if not key.strip():
            self.fail(f"{value!r} has an empty key", param, ctx)
        return key.strip(), val.strip()


class Resources(click.ParamType[dict[str, str]]):
    """`cpu=1,mem=2Gi`: keys cpu, mem, gpu, ephemeral_storage, each at most once."""

    name = "cpu=…,mem=…"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dict):
            return value
        result: dict[str, str] = {}
        for pair in str(value).split(","):
            key, sep, val = pair.partition("=")
            key, val = key.strip(), val.strip()
            if not sep or not key or not val:
                self.fail(f"{pair!r} is not key=value", param, ctx)
            if key not in _RESOURCE_KEYS:
                self.fail(f"unknown resource {key!r} (use {', '.join(_RESOURCE_KEYS)})", param, ctx)
            if key in result:
                self.fail(f"{key!r} is given twice", param, ctx)
            result[key] = val
        return result


def run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Attach every run-level option of pyflyte run (§1b) plus `--output`."""
    options = [
        click.option(
            "-p",
            "--project",
            default=None,
            show_default="$FLYTE_DEFAULT_PROJECT, else $FLYTE_LOCAL_PROJECT, else flytesnacks",
            help="Project to register and run in.",
        ),
        click.option(
            "-d",
            "--domain",
            default=None,
            show_default="$FLYTE_DEFAULT_DOMAIN, else $FLYTE_LOCAL_DOMAIN, else development",
            help="Domain to register and run in.",
        ),
        click.option(
            "--destination-dir", default=".", show_default=True, help="Where task code is unpacked remotely."
        ),
        click.option("--copy-all", is_flag=True, hidden=True, help="Deprecated: use --copy all."),
        click.option(
            "--copy",
            type=click.Choice(["auto", "all"], case_sensitive=False),
            default="auto",
            show_default=True,
            help="Code to package with --remote: the imported modules under the project root, or every file.",
        ),
        click.option("-i", "--image", multiple=True, help="Container image, `fqn:tag` or `name=fqn:tag`."),
        click.option("--service-account", default="", help="Kubernetes service account of the execution."),
        click.option(
            "--wait", "--wait-execution", "wait", is_flag=True, help="Wait for the remote run to finish."
        ),
        click.option(
            "--poll-interval", type=click.FloatRange(min=0.1), help="Seconds between status checks."
        ),
        click.option("--dump-snippet", is_flag=True, help="Print Python code that fetches this execution."),
        click.option(
            "--overwrite-cache", is_flag=True, help="Recompute cached tasks and store the new outputs."
        ),
        click.option(
            "--interruptible/--no-interruptible",
            default=None,
            help="Allow (or forbid) interruptible machines.",
        ),
        click.option(
            "--envvars", "--env", multiple=True, type=KeyValue(), help="K=V set in the tasks' environment."
        ),
        click.option("--resource-requests", type=Resources(), help="Default requests, e.g. cpu=1,mem=2Gi."),
        click.option("--resource-limits", type=Resources(), help="Default limits, e.g. cpu=2,mem=4Gi."),
        click.option("--tags", "--tag", multiple=True, help="Tag the execution (repeatable)."),
        click.option("--name", default=None, help="Name of the execution (lower case, [a-z][a-z0-9-]*)."),
        click.option(
            "--labels",
            "--label",
            multiple=True,
            type=KeyValue(bare_ok=True),
            help="Execution label k=v (repeatable).",
        ),
        click.option(
            "--annotations", "--annotation", multiple=True, type=KeyValue(), help="Execution annotation k=v."
        ),
        click.option(
            "--raw-output-data-prefix", "--raw-data-prefix", default=None, help="Where outputs are written."
        ),
        click.option(
            "--max-parallelism",
            type=click.IntRange(min=0),
            default=None,
            help="Max nodes at once (0 = unlimited).",
        ),
        click.option(
            "--disable-notifications", is_flag=True, help="Send no notifications for this execution."
        ),
        click.option("-r", "--remote", is_flag=True, help="Register and run on the Flyte deployment."),
        click.option(
            "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Max entities listed."
        ),
        click.option("--cluster-pool", default="", help="Cluster pool to run in."),
        click.option("--execution-cluster-label", "--ecl", default="", help="Execution cluster label."),
        click.option(
            "-o",
            "--output",
            type=click.Choice(["human", "json"]),
            default="human",
            show_default=True,
            help="`json` prints exactly one JSON object on stdout.",
        ),
        click.option(
            "--no-daemon", is_flag=True, help="With --wait: poll from this process, not the daemon."
        ),
        click.option(
            "--batch",
            default=None,
            metavar="FILE.jsonl|-",
            help=(
                "Launch one execution per JSON line of inputs (remote), print a manifest line per line "
                "(its run or its error); a re-run starts nothing twice. With --wait, --wait-timeout is "
                "one deadline for the whole batch."
            ),
        ),
        click.option(
            "--max-inflight",
            type=click.IntRange(min=1),
            default=16,
            show_default=True,
            help="Batch runs at once.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return wait_options(fn)
