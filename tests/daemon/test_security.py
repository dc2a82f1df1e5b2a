"""Only the daemon's own user may talk to it: folder and socket modes, and the SO_PEERCRED check."""

from __future__ import annotations

import json
import os
import socket
import sys

import anyio
import pytest

from asyncrun.daemon._paths import DaemonPathError, ensure_private_dir, short_enough
from asyncrun.daemon._server import peer_credentials, peer_refusal

NOBODY = 65534


def test_peer_refusal_unit() -> None:
    assert peer_refusal((123, 1000, 1000), own_uid=1000) is None
    message = peer_refusal((123, 1001, 1001), own_uid=1000)
    assert message is not None and "uid 1001" in message and "1000" in message
    assert peer_refusal(None, own_uid=1000) is None  # no SO_PEERCRED: the 0700 folder is the guard


@pytest.mark.skipif(not hasattr(socket, "SO_PEERCRED"), reason="SO_PEERCRED is Linux-only")
def test_peer_credentials_of_a_socketpair_are_ours() -> None:
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        pid, uid, gid = peer_credentials(left)
    assert (pid, uid, gid) == (os.getpid(), os.getuid(), os.getgid())


def test_private_dir_is_tightened_and_foreign_or_linked_ones_refused(tmp_path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    ensure_private_dir(loose)
    assert loose.stat().st_mode & 0o777 == 0o700
    link = tmp_path / "link"
    link.symlink_to(loose)
    with pytest.raises(DaemonPathError):
        ensure_private_dir(link)
    if os.getuid() == 0:
        foreign = tmp_path / "foreign"
        foreign.mkdir()
        os.chown(foreign, NOBODY, NOBODY)
        with pytest.raises(DaemonPathError, match="belongs to uid"):
            ensure_private_dir(foreign)


def test_long_socket_paths_move_to_a_short_private_place(tmp_path) -> None:
    long = tmp_path / ("x" * 120) / "daemon.sock"
    short = short_enough(long)
    assert len(str(short)) < 108 and short.name == "daemon.sock" and str(os.getuid()) in short.parent.name
    assert short_enough(long) == short  # stable, so CLI and daemon agree
    assert short_enough(tmp_path / "d.sock") == tmp_path / "d.sock"


_CONNECT_AS_NOBODY = """
import json, os, socket, sys
os.setgid(65534)
os.setuid(65534)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print(json.dumps({"connect_error": exc.errno}))
    sys.exit(0)
data = b""
try:
    # The daemon may have answered and hung up before this is sent: the refusal is what counts.
    s.sendall(b'{"op": "hello", "id": 1, "version": 1}\\n')
except OSError:
    pass
try:
    while chunk := s.recv(65536):
        data += chunk
except ConnectionResetError:
    pass
print(json.dumps({"lines": [json.loads(l) for l in data.splitlines()]}))
"""


async def _as_nobody(socket_path) -> dict:
    result = await anyio.run_process([sys.executable, "-c", _CONNECT_AS_NOBODY, str(socket_path)], check=True)
    return json.loads(result.stdout)


@pytest.mark.anyio
@pytest.mark.skipif(os.getuid() != 0, reason="needs root to drop to another uid")
async def test_another_uid_is_refused(daemon, settings) -> None:
    # With the normal modes the other user cannot even reach the socket.
    assert "connect_error" in await _as_nobody(settings.socket_path)
    # Open the folder and the socket wide, so only the SO_PEERCRED check stands in the way.
    settings.socket_path.parent.parent.chmod(0o755)  # the test's temporary folder
    settings.socket_path.parent.chmod(0o777)
    settings.socket_path.chmod(0o777)
    outcome = await _as_nobody(settings.socket_path)
    (refusal,) = outcome["lines"]  # one error, then the daemon hangs up
    assert refusal["ok"] is False and refusal["error"]["code"] == "forbidden"
    assert "uid 65534" in refusal["error"]["message"]
    assert daemon.service.connections == 0
    # And the owner is still served.
    from asyncrun.daemon import DaemonConnection

    async with DaemonConnection(settings=settings, autostart=False) as conn:
        assert conn.daemon["pid"] == os.getpid()
