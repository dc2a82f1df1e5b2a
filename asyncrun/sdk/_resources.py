"""`Resources` and `Secret`: what a task asks of the machine it runs on, named as in flytekit.

A secret reaches a task the way Flyte delivers it: as the environment variable
`_FSEC_<GROUP>[_<GROUP_VERSION>]_<KEY>` (upper case) or as the file
`/etc/flyte/secrets/<group>[/<group_version>]/<key>` (lower case; the folder is
`FLYTE_SECRETS_DEFAULT_DIR` when set), per the secret's mount requirement. Local runs (and the
sandbox) take the value from `ASYNCRUN_SECRET_<GROUP>_<KEY>`, or from the file
`$ASYNCRUN_SECRETS_DIR/<group>/<key>`. Tasks read them with `get_secret(group, key)`.
"""

from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .._exceptions import DefinitionError, UsageError

__all__ = (
    "Resources",
    "Secret",
    "SecretMountType",
    "deliver_secrets",
    "get_secret",
    "local_secret",
    "secret_env_var",
    "secret_file",
)

FLYTE_ENV_PREFIX = "_FSEC_"
FLYTE_DEFAULT_DIR = "/etc/flyte/secrets"
LOCAL_ENV_PREFIX = "ASYNCRUN_SECRET_"
LOCAL_DIR_VAR = "ASYNCRUN_SECRETS_DIR"
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


@dataclass(frozen=True)
class Resources:
    """Kubernetes-style quantities a task requests or is limited to, e.g. `Resources(cpu="1", mem="2Gi")`.

    Attributes:
        cpu: cores (`"500m"`, `"2"`).
        mem: memory (`"512Mi"`, `"4Gi"`).
        gpu: GPUs (`"1"`).
        ephemeral_storage: scratch disk (`"10Gi"`).
    """

    cpu: str | int | float | None = None
    mem: str | None = None
    gpu: str | int | None = None
    ephemeral_storage: str | None = None

    def entries(self) -> dict[str, str]:
        """The quantities given, by flyteidl resource name (`cpu`, `memory`, `gpu`, `ephemeral_storage`)."""
        found: dict[str, str] = {}
        for name, value in (
            ("cpu", self.cpu),
            ("memory", self.mem),
            ("gpu", self.gpu),
            ("ephemeral_storage", self.ephemeral_storage),
        ):
            if value is None:
                continue
            text = str(value)
            if not _QUANTITY.match(text):
                raise DefinitionError(
                    f"resource {name}={text!r} is not a quantity; use e.g. '500m', '2', '4Gi'"
                )
            found[name] = text
        return found


class SecretMountType(enum.Enum):
    """How a secret reaches the task (flyteidl's `Secret.MountType`)."""

    ANY = 0
    ENV_VAR = 1
    FILE = 2


@dataclass(frozen=True)
class Secret:
    """A secret a task requests: `Secret(group="db", key="password")`.

    Attributes:
        group: the secret's group (a Kubernetes secret's name on a Flyte cluster).
        key: the key inside the group.
        group_version: an optional version of the group.
        mount_requirement: `Secret.MountType.ENV_VAR`, `FILE`, or `ANY` (the platform chooses).
    """

    MountType = SecretMountType

    group: str
    key: str | None = None
    group_version: str | None = None
    mount_requirement: SecretMountType = SecretMountType.ANY

    def __post_init__(self) -> None:
        if not self.group:
            raise DefinitionError("a Secret needs a group")


def secret_env_var(group: str, key: str | None, group_version: str | None = None) -> str:
    """The variable Flyte sets for a secret: `_FSEC_<GROUP>[_<VERSION>]_<KEY>`."""
    prefix = os.environ.get("FLYTE_SECRETS_ENV_PREFIX", FLYTE_ENV_PREFIX)
    return prefix + "_".join(part.upper() for part in (group, group_version, key) if part)


def secret_file(group: str, key: str | None, group_version: str | None = None) -> Path:
    """The file Flyte mounts a secret as: `/etc/flyte/secrets/<group>[/<version>]/<key>`."""
    root = Path(os.environ.get("FLYTE_SECRETS_DEFAULT_DIR", FLYTE_DEFAULT_DIR))
    return root.joinpath(*(part.lower() for part in (group, group_version, key) if part))


def local_secret(group: str, key: str | None) -> str | None:
    """A secret's value from asyncrun's local sources (`ASYNCRUN_SECRET_*` or `ASYNCRUN_SECRETS_DIR`)."""
    name = LOCAL_ENV_PREFIX + "_".join(part.upper() for part in (group, key) if part)
    if name in os.environ:
        return os.environ[name]
    folder = os.environ.get(LOCAL_DIR_VAR)
    if folder:
        path = Path(folder).joinpath(*(part for part in (group, key) if part))
        if path.is_file():
            return path.read_text().rstrip("\n")
    return None


def get_secret(group: str, key: str | None = None, group_version: str | None = None) -> str:
    """A secret's value inside a task: Flyte's variable, then Flyte's file, then the local sources.

    Raises:
        UsageError: the secret is nowhere; the message names the variable to set.
    """
    env_var = secret_env_var(group, key, group_version)
    if env_var in os.environ:
        return os.environ[env_var]
    path = secret_file(group, key, group_version)
    if path.is_file():
        return path.read_text()
    value = local_secret(group, key)
    if value is not None:
        return value
    local = LOCAL_ENV_PREFIX + "_".join(part.upper() for part in (group, key) if part)
    raise UsageError(
        f"secret {group}/{key or ''} is not set: set {local} (or {env_var}), "
        f"or put it in ${LOCAL_DIR_VAR}/{group}/{key or ''}"
    )


def deliver_secrets(
    requests: list[tuple[str, str | None, str | None, SecretMountType]], files_root: Path
) -> dict[str, str]:
    """Deliver requested secrets from the local sources the way Flyte does (for the sandbox's tasks).

    Returns the environment to add: `_FSEC_…` variables for ENV_VAR/ANY secrets, and for FILE secrets
    `FLYTE_SECRETS_DEFAULT_DIR` pointing at `files_root`, where their files are written (mode 0600).
    A secret with no local value is left out; the task's `get_secret` then says what to set.
    """
    env: dict[str, str] = {}
    for group, key, version, mount in requests:
        value = local_secret(group, key)
        if value is None:
            continue
        if mount is SecretMountType.FILE:
            path = files_root.joinpath(*(part.lower() for part in (group, version, key) if part))
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.touch(mode=0o600)
            path.write_text(value)
            env["FLYTE_SECRETS_DEFAULT_DIR"] = str(files_root)
        else:
            env[FLYTE_ENV_PREFIX + "_".join(p.upper() for p in (group, version, key) if p)] = value
    return env
