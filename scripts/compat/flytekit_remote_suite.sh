#!/usr/bin/env bash
# Run flytekit's own remote integration suite (tests/flytekit/integration/remote/test_remote.py) against
# the asyncrun sandbox, and print `P passed / F failed / E errors of N`.
#
#   scripts/compat/flytekit_remote_suite.sh FLYTEKIT_CHECKOUT [PYTEST_ARGS...]
#
# FLYTEKIT_CHECKOUT is a work tree of flyteorg/flytekit (the newest tag at or before the flytekit this
# project pins; docs/sandbox.md names the one last used). Nothing of the suite is changed: only its
# environment is made, as flytekit's CI makes it around a Flyte sandbox:
#   - an S3 server (moto) standing in for the sandbox's MinIO, with the bucket `my-s3-bucket`;
#   - `asyncrun sandbox serve` keeping its blobs there (`--blob-store s3://my-s3-bucket`);
#   - the flytectl config the suite reads ($FLYTECTL_CONFIG: admin endpoint, storage connection);
#   - an image name ($FLYTEKIT_IMAGE) that the sandbox ignores: tasks run in this Python environment,
#     which therefore has what the suite's workflows import (pandas, pyarrow, pydantic, joblib).
# Where the OS allows a private network namespace (unshare), everything runs inside one, on the ports
# of Flyte's own sandbox (gRPC 30080, S3 30002), which two tests hard-code; elsewhere on free ports of
# the machine's loopback (and those two tests fail).
#
# Environment: PYTHON (default: this checkout's .venv/bin/python), COMPAT_WORK_DIR (default: a new
# temporary folder, removed at the end unless COMPAT_KEEP=1). The large-file tests (marker
# `lftransfers`, 2 and 3 GB uploads) run only with COMPAT_LARGE_FILES=1, as flytekit's CI runs them as
# a job of their own. Extra arguments go to pytest (e.g. `-k test_fetch_execute_task`).
set -euo pipefail

usage() { echo "usage: $0 FLYTEKIT_CHECKOUT [PYTEST_ARGS...]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
CHECKOUT=$(cd "$1" && pwd) || usage
shift
SUITE=tests/flytekit/integration/remote/test_remote.py
if [[ ! -f $CHECKOUT/$SUITE ]]; then
    echo "$CHECKOUT has no $SUITE: point this script at a flytekit checkout" >&2
    exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
BIN=$(dirname "$PYTHON")

# A private network namespace: Flyte's sandbox ports are free there whatever runs on this machine.
if [[ -z ${COMPAT_IN_NETNS:-} ]] && command -v unshare >/dev/null \
    && unshare --user --map-root-user --net true 2>/dev/null; then
    exec unshare --user --map-root-user --net env COMPAT_IN_NETNS=1 bash "${BASH_SOURCE[0]}" "$CHECKOUT" "$@"
fi
if [[ -n ${COMPAT_IN_NETNS:-} ]]; then
    ip link set lo up 2>/dev/null || "$PYTHON" - <<'EOF'
import fcntl, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH", b"lo", 0)))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"lo", flags | 1))
EOF
    ADMIN_PORT=30080 HTTP_PORT=30081 S3_PORT=30002
else
    read -r ADMIN_PORT HTTP_PORT S3_PORT < <("$PYTHON" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)
fi

for module in flytekit pytest pandas pyarrow pydantic joblib moto boto3 s3fs; do
    "$PYTHON" -c "import $module" 2>/dev/null || {
        echo "$PYTHON cannot import $module: install asyncrun with its test extra (pip install -e '.[test]')" >&2
        exit 2
    }
done

WORK=${COMPAT_WORK_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/asyncrun-flytekit-suite.XXXXXX")}
mkdir -p "$WORK/home"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ -z ${COMPAT_KEEP:-} && -z ${COMPAT_WORK_DIR:-} ]]; then
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for_port() {  # PORT WHAT PID
    "$PYTHON" - "$1" "$2" "$3" <<'EOF'
import os, socket, sys, time
port, what, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(f"{what} exited before listening on port {port}")
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(f"{what} did not listen on port {port} within 60 s")
EOF
}

# What a Flyte user of the sandbox has: S3 credentials for its object store, no AWS files in the way.
export AWS_ACCESS_KEY_ID=minio AWS_SECRET_ACCESS_KEY=miniostorage AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=$WORK/no-aws-config AWS_SHARED_CREDENTIALS_FILE=$WORK/no-aws-credentials
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL_S3 FSSPEC_S3_ENDPOINT_URL
S3_ENDPOINT=http://localhost:$S3_PORT
export AWS_ENDPOINT_URL=$S3_ENDPOINT

"$PYTHON" -m moto.server -H 127.0.0.1 -p "$S3_PORT" >"$WORK/moto.log" 2>&1 &
PIDS+=($!)
wait_for_port "$S3_PORT" "moto (log: $WORK/moto.log)" "${PIDS[-1]}"
"$PYTHON" -c "import boto3; boto3.client('s3', endpoint_url='$S3_ENDPOINT').create_bucket(Bucket='my-s3-bucket')"

"$BIN/asyncrun" sandbox serve --port "$ADMIN_PORT" --http-port "$HTTP_PORT" --data-dir "$WORK/sandbox" \
    --task-path "$BIN" --blob-store s3://my-s3-bucket --s3-endpoint "$S3_ENDPOINT" >"$WORK/sandbox.out" 2>&1 &
PIDS+=($!)
wait_for_port "$ADMIN_PORT" "the sandbox (log: $WORK/sandbox.out)" "${PIDS[-1]}"

cat >"$WORK/config-sandbox.yaml" <<EOF
admin:
  endpoint: dns:///localhost:$ADMIN_PORT
  insecure: true
console:
  endpoint: http://localhost:$HTTP_PORT/console
storage:
  type: stow
  connection:
    endpoint: $S3_ENDPOINT
    access-key: $AWS_ACCESS_KEY_ID
    secret-key: $AWS_SECRET_ACCESS_KEY
    disable-ssl: true
    region: $AWS_DEFAULT_REGION
EOF
export FLYTECTL_CONFIG=$WORK/config-sandbox.yaml HOME=$WORK/home
export FLYTEKIT_IMAGE=localhost:30000/flytekit:dev  # never pulled: the sandbox runs tasks here
export PATH=$BIN:$PATH
unset FLYTE_PLATFORM_URL FLYTE_PLATFORM_INSECURE

MARKERS=()
[[ -n ${COMPAT_LARGE_FILES:-} ]] || MARKERS=(-m "not lftransfers")
cd "$CHECKOUT"
# pytest, not `python -m pytest`, and --import-mode=append: the checkout's own flytekit/ folder must not
# shadow the installed flytekit.
# In the background, so that a signal to this script runs its traps (stopping pytest too) at once.
"$BIN/pytest" "$SUITE" --import-mode=append -p no:cacheprovider -o timeout=900 -o addopts= -rfE \
    --junitxml="$WORK/junit.xml" "${MARKERS[@]}" "$@" >"$WORK/pytest.log" 2>&1 &
PIDS+=($!)
tail -n +1 --pid="${PIDS[-1]}" -f "$WORK/pytest.log" &
TAIL=$!
wait "${PIDS[-1]}" || true
wait "$TAIL" || true
if [[ ! -s $WORK/junit.xml ]]; then
    echo "pytest wrote no report (log: $WORK/pytest.log)" >&2
    exit 1
fi

"$PYTHON" - "$WORK/junit.xml" "$CHECKOUT" <<'EOF'
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

suite = ET.parse(sys.argv[1]).getroot()
suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
total, failed, errors, skipped = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
passed = total - failed - errors - skipped
print(f"flytekit remote suite ({Path(sys.argv[2]).name}): {passed} passed / {failed} failed / {errors} errors of {total}"
      f" ({skipped} skipped)")
EOF
