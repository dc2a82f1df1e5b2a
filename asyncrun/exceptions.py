"""The public names of asyncrun's errors: `from asyncrun.exceptions import UnreachableError`.

The tree, and the exit code of each class, is drawn in `asyncrun._exceptions`'s docstring.
"""

from __future__ import annotations

from ._exceptions import *  # noqa: F403 - re-exported on purpose
from ._exceptions import __all__ as __all__
