"""The daemon's request handlers and its registry of tracked executions (docs/daemon-protocol.md).

The registry holds every journaled execution in memory; pollers update it and report here, and this
module journals each change *before* it tells any subscriber, so what a CLI was told survives a
SIGKILL. Handlers never let an exception escape: a failure becomes an error reply.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, fields
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from .._exceptions import (
    AsyncrunError,
    AuthenticationError,
    ConfigError,
    SilentEndpointError,
    UnreachableError,
    UsageError,
)
from .._version import __version__
from ..client import ClientConfig, ExecutionId, load_config
from . import _protocol as p
from ._launch import Launcher
from ._poller import Endpoint, Poller, apply_execution, fetch_outputs_forever
from ._tracked import OUTPUTS_NONE, OUTPUTS_PENDING, Key, Tracked

if TYPE_CHECKING:
    from collections.abc import Iterable

    from anyio.abc import TaskGroup

    from . import _requests as r
    from ._journal import Journal
    from ._protocol import JSON
    from ._settings import DaemonSettings

log = logging.getLogger("asyncrun.daemon")

_ID_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}")  # keeps names safe inside value_in(…)
_SNAPSHOT_CHUNK = 1000
_CONFIG_TTL = 2.0
FIRST_CONTACT_BUDGET = 20.0  # seconds a never-answered control plane gets before a wait fails (exit 6)


class EventSink(Protocol):
    """A connection's outgoing side as handlers see it."""

    def send_event(self, message: JSON) -> None: ...


class Subscriber:
    """A live wait (over `keys`) or watch (over `keys`, or everything when `keys` is None)."""

    def __init__(
        self,
        sink: EventSink,
        request_id: Any,
        keys: set[Key] | None,
        *,
        wait_for: str = "terminal",
        outputs: bool = False,
        events: bool = True,
    ) -> None:
        self.sink = sink
        self.request_id = request_id
        self.keys = keys
        self.remaining = set(keys or ())
        self.wait_for = wait_for
        self.outputs = outputs
        self.events = events
        self.done = anyio.Event()

    def send(self, kind: str, **fields: Any) -> None:
        if self.events:
            self.sink.send_event(p.event(self.request_id, kind, **fields))

    def deliver(self, states: list[JSON]) -> None:
        self.send("update", executions=states)
        for state in states:
            key = (state["endpoint"], state["project"], state["domain"], state["name"])
            if key in self.remaining and p.is_settled(state, self.wait_for, self.outputs):
                self.remaining.discard(key)
        if self.keys is not None and not self.remaining:
            self.done.set()


class Service:
    """Registry, pollers and handlers of one daemon; `handle()` answers one validated request."""

    def __init__(self, settings: DaemonSettings, journal: Journal, tg: TaskGroup) -> None:
        self.settings = settings
        self.journal = journal
        self.tg = tg
        self.items: dict[Key, Tracked] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.pollers: dict[tuple[str, str, str], Poller] = {}
        self.watchers: set[Subscriber] = set()
        self.started_at = time.time()
        self.connections = 0
        self.shutdown_requested = anyio.Event()
        self.launcher = Launcher()
        self._configs: dict[str, tuple[float, ClientConfig]] = {}

    # ---------------------------------------------------------------- start, stop, idle

    async def load(self) -> None:
        """Resume from the journal: every unfinished run is polled again, pending outputs fetched."""
        cutoff = time.time() - self.settings.retention
        await self.journal.call(self.journal.prune, cutoff)
        for name, row in (await self.journal.call(self.journal.load_endpoints)).items():
            known = {f.name for f in fields(ClientConfig)}
            endpoint = self._add_endpoint(
                ClientConfig(**{k: v for k, v in row["config"].items() if k in known})
            )
            if row["unreachable_since"] is not None:
                endpoint.state, endpoint.unreachable_since = "unreachable", row["unreachable_since"]
                endpoint.last_error = row["last_error"]
            log.info("resuming endpoint %s", name)
        items = await self.journal.call(self.journal.load_executions)
        for item in items:
            if item.endpoint not in self.endpoints:
                log.warning("journal row %s has no endpoint config; skipped", item.key)
                continue
            self.items[item.key] = item
            self._poll(item)
        log.info("journal: %d executions, %d still running", len(items), sum(t.needs_polling for t in items))

    def busy(self) -> bool:
        """Something to do: a connection, a run to poll, or outputs to fetch."""
        return self.connections > 0 or any(
            t.needs_polling or (t.outputs_state == OUTPUTS_PENDING and t.phase == "SUCCEEDED")
            for t in self.items.values()
        )

    async def housekeeping(self) -> None:
        """Drop finished runs past the retention period, once an hour."""
        while True:
            await anyio.sleep(3600)
            keys = await self.journal.call(self.journal.prune, time.time() - self.settings.retention)
            for key in keys:
                item = self.items.get(key)
                if item is not None and not item.subscribers:
                    self._forget(item)

    def close(self) -> None:
        for endpoint in self.endpoints.values():
            endpoint.close()

    # ---------------------------------------------------------------- dispatch

    async def handle(self, sink: EventSink, request: r.Request) -> JSON:
        """The final reply to `request`; every failure becomes an error reply."""
        handler = getattr(self, f"_on_{request.op}", None)
        if handler is None:
            return p.error_reply(request.request_id, p.UNKNOWN_OP, f"op {request.op} is not served here")
        try:
            result: JSON = await handler(sink, request)
            return result
        except AsyncrunError as exc:
            return p.error_reply(
                request.request_id,
                p.error_code_of(exc),
                str(exc) or type(exc).__name__,
                exit_code=exc.exit_code,
            )
        except p.ProtocolError as exc:
            return p.error_reply(request.request_id, exc.code, exc.message)
        except Exception as exc:
            log.exception("request %s failed", request.op)
            return p.error_reply(
                request.request_id, p.INTERNAL, f"internal error: {type(exc).__name__}: {exc}"
            )

    # ---------------------------------------------------------------- handlers

    async def _on_track(self, sink: EventSink, request: r.Track) -> JSON:
        endpoint, keys = await self._resolve(request.target, request.ids)
        items = [self._ensure(key, endpoint) for key in keys]
        for item in items:
            item.interest += 1
            if request.outputs:
                self._want_outputs(item)
        await self._save_and_poll(items)
        return p.reply(request.request_id, executions=p.Lazy(items, self._state))

    async def _on_untrack(self, sink: EventSink, request: r.Untrack) -> JSON:
        _, keys = await self._resolve(request.target, request.ids)
        forgotten = 0
        changed = []
        for key in keys:
            item = self.items.get(key)
            if item is None:
                continue
            item.interest = max(0, item.interest - 1)
            if item.wanted:
                changed.append(item)
            else:
                self._forget(item)
                forgotten += 1
        await self.journal.call(self.journal.save, changed)
        await self.journal.call(self.journal.delete, [k for k in keys if k not in self.items])
        return p.reply(request.request_id, untracked=forgotten, still_wanted=len(changed))

    async def _on_wait(self, sink: EventSink, request: r.Wait) -> JSON:
        endpoint, keys = await self._resolve(request.target, request.ids)
        await self._first_contact(endpoint, keys)
        items = [self._ensure(key, endpoint) for key in keys]
        sub = Subscriber(
            sink,
            request.request_id,
            set(keys),
            wait_for=request.wait_for,
            outputs=request.outputs,
            events=request.events,
        )
        # Subscribed before the first await, so no other request can forget these runs under us.
        for item in items:
            item.subscribe(sub)
        subscriber_id = request.subscriber or uuid.uuid4().hex
        finished = False
        try:
            if request.outputs:
                for item in items:
                    self._want_outputs(item)
            await self._save_and_poll(items)
            fresh = set(
                await self.journal.call(self.journal.add_subscriber, subscriber_id, keys, request.wait_for)
            )
            for item in items:
                item.durable_subscribers += item.key in fresh
            for start in range(0, len(items), _SNAPSHOT_CHUNK):  # 100,000 runs: 100 events, not one
                chunk = items[start : start + _SNAPSHOT_CHUNK]
                sub.deliver([self._state(t, with_outputs=request.outputs) for t in chunk])
            self._tell_endpoint_health(sub, {endpoint.name})
            with anyio.move_on_after(request.timeout):
                await sub.done.wait()
            finished = True
        finally:
            for item in items:
                item.unsubscribe(sub)
            with anyio.CancelScope(shield=True):
                held = set(await self.journal.call(self.journal.remove_subscriber, subscriber_id))
                for item in items:
                    if item.key in held:
                        item.durable_subscribers = max(0, item.durable_subscribers - 1)
                    if not item.wanted and not item.settled:
                        self._forget(item)
                await self.journal.call(
                    self.journal.delete, [t.key for t in items if t.key not in self.items]
                )
        return p.reply(
            request.request_id,
            done=finished and sub.done.is_set(),
            timed_out=not sub.done.is_set(),
            subscriber=subscriber_id,
            executions=p.Lazy(items, partial(self._state, with_outputs=request.outputs)),
        )

    async def _on_status(self, sink: EventSink, request: r.Status) -> JSON:
        info = self.daemon_info()
        if request.ids:
            endpoint, keys = await self._resolve(request.target, request.ids)
            states = await self._lookup(endpoint, keys, request.outputs)
            return p.reply(request.request_id, daemon=info, executions=states)
        every = list(self.items.values()) if request.executions else []
        lazy = p.Lazy(every, partial(self._state, with_outputs=request.outputs))
        return p.reply(request.request_id, daemon=info, executions=lazy)

    async def _on_watch(self, sink: EventSink, request: r.Watch) -> JSON:
        items: list[Tracked]
        if request.ids:
            endpoint, keys = await self._resolve(request.target, request.ids)
            await self._first_contact(endpoint, keys)
            items = [self._ensure(key, endpoint) for key in keys]
            # Ends once every run named has finished (or is known not to exist).
            sub = Subscriber(sink, request.request_id, set(keys))
            for item in items:
                item.subscribe(sub)
            names = {endpoint.name}
        else:
            items = list(self.items.values())
            sub = Subscriber(sink, request.request_id, None)
            self.watchers.add(sub)
            names = set(self.endpoints)
        try:
            if request.ids:
                await self._save_and_poll(items)
            for start in range(0, max(len(items), 1), _SNAPSHOT_CHUNK):
                chunk = items[start : start + _SNAPSHOT_CHUNK]
                sub.send("snapshot", executions=[self._state(t) for t in chunk], total=len(items))
            self._tell_endpoint_health(sub, names)
            if sub.keys is None:
                await anyio.sleep_forever()
            sub.remaining -= {t.key for t in items if t.settled}
            if sub.remaining:
                await sub.done.wait()
        finally:
            self.watchers.discard(sub)
            for item in items:
                item.unsubscribe(sub)
                if not item.wanted and not item.settled:
                    self._forget(item)
        return p.reply(request.request_id, done=True, executions=p.Lazy(items, self._state))

    async def _on_launch(self, sink: EventSink, request: r.Launch) -> JSON:
        config = self._config(request.target)
        endpoint = await self._endpoint(config)
        execution, created = await self.launcher.launch(endpoint, config.project, config.domain, request)
        ex_id = execution.id
        item = self._ensure((endpoint.name, ex_id.project, ex_id.domain, ex_id.name), endpoint)
        item.interest += 1
        apply_execution(item, execution, time.time())
        if request.outputs:
            self._want_outputs(item)
        await self._save_and_poll([item])
        return p.reply(request.request_id, execution=self._state(item), created=created)

    async def _on_terminate(self, sink: EventSink, request: r.Terminate) -> JSON:
        endpoint, keys = await self._resolve(request.target, request.ids)
        results: list[JSON] = []
        for key in keys:
            ex_id = ExecutionId(*key[1:])
            try:
                await self.launcher.terminate(endpoint, ex_id, request.cause)
                results.append({"id": str(ex_id), "ok": True})
            except AsyncrunError as exc:
                results.append(
                    {
                        "id": str(ex_id),
                        "ok": False,
                        "error": {"code": p.error_code_of(exc), "message": str(exc)},
                    }
                )
            item = self.items.get(key)
            if item is not None and item.needs_polling:
                self._poll(item)  # poll it again soon: ABORTED should show without waiting a full interval
        return p.reply(request.request_id, results=results)

    async def _on_shutdown(self, sink: EventSink, request: r.Shutdown) -> JSON:
        self.shutdown_requested.set()
        return p.reply(request.request_id, stopping=True)

    # ---------------------------------------------------------------- poll sink

    async def states_changed(self, items: list[Tracked]) -> None:
        """Journal, then fan one `update` event per subscriber out over every changed run."""
        items = [item for item in items if self.items.get(item.key) is item]  # not resurrect forgotten ones
        await self.journal.call(self.journal.save, items)
        plain: dict[Key, JSON] = {}
        full: dict[Key, JSON] = {}
        per_subscriber: defaultdict[Subscriber, list[JSON]] = defaultdict(list)
        for item in items:
            for sub in (*item.subscribers, *self.watchers):
                cache = full if sub.outputs else plain
                state = cache.get(item.key)
                if state is None:
                    state = cache[item.key] = self._state(item, with_outputs=sub.outputs)
                per_subscriber[sub].append(state)
        for sub, states in per_subscriber.items():
            sub.deliver(states)

    async def endpoint_changed(self, endpoint: Endpoint) -> None:
        await self.journal.call(
            self.journal.save_endpoint_health, endpoint.name, endpoint.unreachable_since, endpoint.last_error
        )
        subs: set[Subscriber] = set(self.watchers)
        for item in self.items.values():
            if item.endpoint == endpoint.name:
                subs.update(item.subscribers)
        for sub in subs:
            sub.send("endpoint", **endpoint.health())

    # ---------------------------------------------------------------- helpers

    def daemon_info(self) -> JSON:
        return {
            "pid": os.getpid(),
            "version": __version__,
            "protocol": p.PROTOCOL_VERSION,
            "started_at": self.started_at,
            "uptime": time.time() - self.started_at,
            "socket": str(self.settings.socket_path),
            "journal": str(self.settings.journal_path),
            "tracked": len(self.items),
            "active": sum(1 for t in self.items.values() if t.needs_polling),
            "connections": self.connections,
            "endpoints": [e.health() for e in self.endpoints.values()],
            "pollers": [poller.stats() for poller in self.pollers.values()],
        }

    def _config(self, target: p.Target) -> ClientConfig:
        """Resolve a target exactly as `Client.from_config` would in the CLI's environment."""
        key = target.cache_key()
        cached = self._configs.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        config = load_config(target.config, env=target.env or None)
        if target.endpoint:
            config = config.with_overrides(
                endpoint=target.endpoint, source="argument", insecure=target.insecure
            )
        config = config.with_overrides(insecure=target.insecure, project=target.project, domain=target.domain)
        self._configs[key] = (time.monotonic() + _CONFIG_TTL, config)
        return config

    def _add_endpoint(self, config: ClientConfig) -> Endpoint:
        endpoint = self.endpoints[config.endpoint] = Endpoint(config, self.settings)
        self.tg.start_soon(fetch_outputs_forever, endpoint, self)
        return endpoint

    async def _endpoint(self, config: ClientConfig, secret_env: dict[str, str] | None = None) -> Endpoint:
        endpoint = self.endpoints.get(config.endpoint)
        if endpoint is None:
            endpoint = self._add_endpoint(config)
            await self.journal.call(self.journal.save_endpoint, config.endpoint, asdict(config))
        elif endpoint.reconfigure(config):
            await self.journal.call(self.journal.save_endpoint, config.endpoint, asdict(config))
        if secret_env:
            endpoint.secret_env.update(secret_env)  # memory only: never journaled
        return endpoint

    async def _resolve(self, target: p.Target, ids: Iterable[str]) -> tuple[Endpoint, list[Key]]:
        """The endpoint of `target` and the keys of `ids` (NAME, PROJECT:DOMAIN:NAME or a console URL)."""
        config = self._config(target)
        keys: dict[Key, None] = {}
        for text in ids:
            ex_id = ExecutionId.parse(text, project=config.project, domain=config.domain)
            for part in (ex_id.project, ex_id.domain, ex_id.name):
                if not _ID_PART.fullmatch(part):
                    raise UsageError(f"{text!r} is not a valid execution id")
            keys[(config.endpoint, ex_id.project, ex_id.domain, ex_id.name)] = None
        return await self._endpoint(config, target.secret_env), list(keys)

    async def _first_contact(self, endpoint: Endpoint, keys: list[Key]) -> None:
        """Before a wait or watch on an endpoint that has never answered this daemon, and for runs it
        has never seen, ask once with the retrying client: a control plane that cannot be reached at
        all (a mistyped endpoint) fails the request (UnreachableError, exit 6) instead of leaving it
        waiting forever. An outage of an endpoint that has answered before is waited out.

        One probe at a time per endpoint, and its verdict answers every request that arrived while
        it ran (200 waits cost one probe, not 200 in a row)."""
        unseen = [k for k in keys if (t := self.items.get(k)) is None or t.seen_at is None]
        if not unseen or endpoint.answered:
            return
        arrived = time.monotonic()
        async with endpoint.first_contact:
            if endpoint.answered:
                return
            verdict = endpoint.first_contact_verdict
            if verdict is None or verdict[0] < arrived:  # no probe ended since this request arrived
                error = await self._probe(endpoint, unseen[0])
                verdict = endpoint.first_contact_verdict = (time.monotonic(), error)
            if verdict[1] is not None:
                raise verdict[1]

    async def _probe(self, endpoint: Endpoint, key: Key) -> AsyncrunError | None:
        """The error that proves the control plane cannot be reached (refused, no route, no such
        host, not a gRPC server, refused credentials), or None: it answered, or it is there but slow
        (accepted the connection and said nothing yet, a call deadline) or faulty, which the poller
        waits out. A busy control plane is never taken for a mistyped one."""
        _, project, domain, name = key
        await endpoint.call_slot()
        started_at = time.time()
        try:
            with anyio.move_on_after(FIRST_CONTACT_BUDGET + 10) as scope:
                while True:
                    try:
                        await endpoint.client.list_executions(
                            names=[name], limit=1, project=project, domain=domain
                        )
                        break
                    except SilentEndpointError:
                        raise
                    except UnreachableError:  # refused…: retried, a starting control plane is not a typo
                        if time.time() - started_at > FIRST_CONTACT_BUDGET:
                            raise
                        await anyio.sleep(1.0)
        except AsyncrunError as exc:
            if endpoint.failed(exc, started_at):
                await self.endpoint_changed(endpoint)
            if isinstance(exc, SilentEndpointError):
                return None
            if isinstance(exc, UnreachableError | AuthenticationError | ConfigError):
                return exc
            return None
        if not scope.cancelled_caught and endpoint.succeeded():
            await self.endpoint_changed(endpoint)
        return None

    def _ensure(self, key: Key, endpoint: Endpoint) -> Tracked:
        item = self.items.get(key)
        if item is None:
            _, project, domain, name = key
            url = f"{endpoint.console_url}/projects/{project}/domains/{domain}/executions/{name}"
            item = self.items[key] = Tracked(key, tracked_at=time.time(), url=url)
        return item

    def _want_outputs(self, item: Tracked) -> None:
        if (
            item.outputs_state != OUTPUTS_NONE
            or (item.terminal and item.phase != "SUCCEEDED")
            or not item.found
        ):
            return
        item.outputs_state = OUTPUTS_PENDING
        if item.phase == "SUCCEEDED":
            self.endpoints[item.endpoint].outputs_in.send_nowait(item)

    async def _save_and_poll(self, items: list[Tracked]) -> None:
        await self.journal.call(self.journal.save, items)
        for item in items:
            if item.key in self.items and item.needs_polling:
                poller = self.pollers.get(item.key[:3])
                if poller is None or item.name not in poller.items:
                    self._poll(item)

    def _poll(self, item: Tracked) -> None:
        poller = self.pollers.get(item.key[:3])
        if poller is None:
            endpoint = self.endpoints[item.endpoint]
            poller = self.pollers[item.key[:3]] = Poller(
                endpoint, item.project, item.domain, self.settings, self
            )
            self.tg.start_soon(poller.run)
        poller.add(item)
        if item.outputs_state == OUTPUTS_PENDING and item.phase == "SUCCEEDED":
            self.endpoints[item.endpoint].outputs_in.send_nowait(item)

    def _forget(self, item: Tracked) -> None:
        self.items.pop(item.key, None)
        poller = self.pollers.get(item.key[:3])
        if poller is not None:
            poller.discard(item.name)

    def _state(self, item: Tracked, *, with_outputs: bool = False) -> JSON:
        endpoint = self.endpoints.get(item.endpoint)
        since = endpoint.unreachable_since if endpoint is not None else None
        return item.to_wire(unreachable_since=since, with_outputs=with_outputs)

    def _tell_endpoint_health(self, sub: Subscriber, names: Iterable[str]) -> None:
        for name in names:
            endpoint = self.endpoints.get(name)
            if endpoint is not None and endpoint.state == "unauthenticated":
                # A new waiter usually comes from a CLI that has just signed in again: poll at once
                # with the renewed cached token instead of failing it on the old verdict.
                endpoint.resume_at = 0.0
                for poller in self.pollers.values():
                    if poller.endpoint is endpoint:
                        poller.wake()
            elif endpoint is not None and endpoint.state != "ok":
                sub.send("endpoint", **endpoint.health())

    async def _lookup(self, endpoint: Endpoint, keys: list[Key], with_outputs: bool) -> list[JSON]:
        """States of `keys`: tracked ones from memory, the rest with one list call per page."""
        states: dict[Key, JSON] = {}
        unknown: defaultdict[tuple[str, str], list[Key]] = defaultdict(list)
        for key in keys:
            item = self.items.get(key)
            if item is not None:
                states[key] = {**self._state(item, with_outputs=with_outputs), "tracked": True}
            else:
                unknown[(key[1], key[2])].append(key)
        size = self.settings.page_size
        for (project, domain), group in unknown.items():
            for start in range(0, len(group), size):
                page = group[start : start + size]
                await endpoint.call_slot()
                started_at = time.time()
                try:
                    found, _ = await endpoint.poll_client.list_executions(
                        names=[k[3] for k in page], limit=size, project=project, domain=domain
                    )
                except AsyncrunError as exc:
                    if endpoint.failed(exc, started_at):
                        await self.endpoint_changed(endpoint)
                    found = []
                    error = {
                        "code": p.error_code_of(exc),
                        "message": str(exc),
                        "kind": "SYSTEM",
                        "exit_code": exc.exit_code,
                    }
                    for key in page:
                        states[key] = {
                            **self._state(self._ensure_temp(key, endpoint)),
                            "phase": None,
                            "tracked": False,
                            "error": error,
                        }
                    continue
                if endpoint.succeeded():
                    await self.endpoint_changed(endpoint)
                by_name = {ex.id.name: ex for ex in found}
                for key in page:
                    temp = self._ensure_temp(key, endpoint)
                    execution = by_name.get(key[3])
                    if execution is None:
                        temp.found = False
                        temp.error = {
                            "code": "NOT_FOUND",
                            "message": f"no execution {key[3]} in {project}/{domain}",
                            "kind": "USER",
                        }
                    else:
                        apply_execution(temp, execution, time.time())
                    states[key] = {**self._state(temp), "tracked": False}
        return [states[key] for key in keys]

    def _ensure_temp(self, key: Key, endpoint: Endpoint) -> Tracked:
        _, project, domain, name = key
        url = f"{endpoint.console_url}/projects/{project}/domains/{domain}/executions/{name}"
        return Tracked(key, tracked_at=time.time(), url=url)
