"""Which flytekit versions asyncrun reads (the range the `asyncrun[flytekit]` extra pins)."""

from __future__ import annotations

import functools
import re

from .._exceptions import ConfigError

__all__ = ("SUPPORTED", "check_flytekit_version", "is_supported")

# Keep in step with the `flytekit` extra in pyproject.toml.
SUPPORTED = (1, 14), (1, 17)
SUPPORTED_TEXT = ">=1.14,<1.17"


def is_supported(version: str) -> bool:
    """Whether flytekit `version` (e.g. "1.16.31") is in the supported range."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        return False
    found = (int(match.group(1)), int(match.group(2)))
    return SUPPORTED[0] <= found < SUPPORTED[1]


@functools.cache
def check_flytekit_version() -> None:
    """Raise `ConfigError` (one line) unless the installed flytekit is in the supported range."""
    import flytekit

    version = str(getattr(flytekit, "__version__", "unknown"))
    if not is_supported(version):
        raise ConfigError(
            f"flytekit {version} is not supported by asyncrun (supported: flytekit{SUPPORTED_TEXT}); "
            "install a supported one: pip install 'asyncrun[flytekit]'"
        )
