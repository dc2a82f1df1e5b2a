"""The journal: what is saved comes back, even after the writer is killed with SIGKILL."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import pytest

from asyncrun.daemon._journal import Journal
from asyncrun.daemon._paths import DaemonAlreadyRunningError
from asyncrun.daemon._tracked import Tracked


def _item(name: str, **fields) -> Tracked:
    return Tracked(("h:1", "p", "d", name), tracked_at=100.0, **fields)


def test_save_and_load_round_trip(tmp_path) -> None:
    journal = Journal.open(tmp_path / "j.sqlite3")
    journal.save_endpoint("h:1", {"endpoint": "h:1", "insecure": True})
    a = _item(
        "a", phase="SUCCEEDED", outputs={"o0": [1, 2]}, outputs_state="done", interest=2, terminal_at=5.0
    )
    b = _item("b", phase="FAILED", error={"code": "E", "message": "m", "kind": "USER"})
    c = _item("c", found=False)
    journal.save([a, b, c])
    b.phase = "RUNNING"
    journal.save([b])  # an update, not a second row
    assert journal.add_subscriber("sub1", [a.key, b.key], "terminal") == [a.key, b.key]
    assert journal.add_subscriber("sub1", [a.key, b.key], "terminal") == []  # a reconnecting CLI
    journal.save_endpoint_health("h:1", 42.0, "down")
    journal.close()

    again = Journal.open(tmp_path / "j.sqlite3")
    loaded = {t.name: t for t in again.load_executions()}
    assert set(loaded) == {"a", "b", "c"}
    assert (
        loaded["a"].outputs == {"o0": [1, 2]} and loaded["a"].interest == 2 and loaded["a"].terminal_at == 5.0
    )
    assert loaded["b"].phase == "RUNNING" and loaded["b"].error["code"] == "E"
    assert loaded["c"].found is False
    assert loaded["a"].durable_subscribers == 1 and loaded["c"].durable_subscribers == 0
    assert again.load_endpoints()["h:1"] == {
        "config": {"endpoint": "h:1", "insecure": True},
        "unreachable_since": 42.0,
        "last_error": "down",
    }
    assert sorted(again.remove_subscriber("sub1")) == sorted([a.key, b.key])
    again.close()


def test_prune_keeps_runs_someone_waits_for(tmp_path) -> None:
    journal = Journal.open(tmp_path / "j.sqlite3")
    old_done = _item("old", phase="SUCCEEDED", terminal_at=10.0)
    waited = _item("waited", phase="SUCCEEDED", terminal_at=10.0)
    running = _item("running")
    journal.save([old_done, waited, running])
    journal.add_subscriber("s", [waited.key], "terminal")
    assert journal.prune(finished_before=20.0) == [old_done.key]
    assert {t.name for t in journal.load_executions()} == {"waited", "running"}
    # A journaled wait whose CLI never came back does not keep a run forever.
    assert journal.prune(finished_before=time.time() + 1) == [waited.key]
    journal.close()


def test_one_daemon_per_journal(tmp_path) -> None:
    journal = Journal.open(tmp_path / "j.sqlite3")
    try:
        with pytest.raises(DaemonAlreadyRunningError):
            Journal.open(tmp_path / "j.sqlite3")
    finally:
        journal.close()
    Journal.open(tmp_path / "j.sqlite3").close()  # released on close


_WRITE_THEN_DIE = """
import os, signal, sys
from asyncrun.daemon._journal import Journal
from asyncrun.daemon._tracked import Tracked
journal = Journal.open(__import__("pathlib").Path(sys.argv[1]))
journal.save([Tracked(("h:1", "p", "d", f"n{i}"), tracked_at=1.0, phase="RUNNING") for i in range(1000)])
journal.save([Tracked(("h:1", "p", "d", "n7"), tracked_at=1.0, phase="SUCCEEDED", terminal_at=2.0)])
journal.add_subscriber("s", [("h:1", "p", "d", "n7")], "terminal")
print("saved", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_survives_sigkill_of_the_writer(tmp_path) -> None:
    path = tmp_path / "j.sqlite3"
    result = subprocess.run(
        [sys.executable, "-c", _WRITE_THEN_DIE, str(path)], capture_output=True, text=True
    )
    assert result.returncode == -9 and result.stdout.strip() == "saved", result.stderr
    # The dead writer's locks died with it: both are free at once, not after a timeout.
    from asyncrun._filelock import FileLock

    lock = FileLock(path.with_name(path.name + ".lock"))
    assert lock.try_acquire(), "the journal lock outlived its SIGKILLed holder"
    lock.release()
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    probe.execute("BEGIN IMMEDIATE")  # raises "database is locked" if anything still holds it
    probe.execute("ROLLBACK")
    probe.close()
    journal = Journal.open(path)
    loaded = {t.name: t for t in journal.load_executions()}
    assert len(loaded) == 1000 and loaded["n7"].phase == "SUCCEEDED" and loaded["n7"].durable_subscribers == 1
    journal.close()
