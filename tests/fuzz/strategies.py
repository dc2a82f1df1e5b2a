"""Hypothesis strategies the fuzz tests share: text a user might type, JSON documents, and so on."""

from __future__ import annotations

import json
import os
import string

from hypothesis import strategies as st


def budget(examples: int) -> int:
    """A test's example count for the `ci` profile, scaled up under ASYNCRUN_FUZZ_PROFILE=deep."""
    return examples * (20 if os.environ.get("ASYNCRUN_FUZZ_PROFILE") == "deep" else 1)


# JSON values as `json.loads` returns them (no NaN: it never equals itself).
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

# Pieces of the forms the parsers accept, shuffled into things that are almost right.
_WORDS = [
    "now",
    "today",
    "none",
    "null",
    "NULL",
    "true",
    "false",
    "yes",
    "no",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "P",
    "T",
    "PT",
    "P1D",
    "PT1H30M",
    "1h30m",
    "10 days",
    "500ms",
    "1:30",
    "1:02:03",
    "µs",
    "d",
    "h",
    "m",
    "s",
    "w",
    "+",
    "-",
    " + ",
    " - ",
    ":",
    ".",
    ",",
    "e",
    "E",
    "_",
    "Z",
    "z",
    "T",
    "[",
    "]",
    "{",
    "}",
    '"',
    "'",
    "\\",
    "/",
    "s3://",
    "./",
    "..",
    "~",
    "\x00",
    "\n",
    "\t",
    " ",
    "٣",
    "²",
    "Ⅻ",
    "9" * 30,
    "2024-01-05",
    "2024-13-45",
    "0000-01-01",
    "9999-12-31T23:59:59+23:59",
    "T10:30:00",
    ".5",
    "+02:00",
    "red",
    "green",
    "RED",
    "blue",
    '{"x": 1}',
    "[1, 2]",
    '{"name": "a"}',
    '{"path": "s3://b/k"}',
    ".json",
    ".yaml",
    ".yml",
]
_FRAGMENTS = st.one_of(
    st.sampled_from(_WORDS),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=True).map(repr),
    st.text(alphabet=string.digits + ":.-+TZ PDHMSdhms", max_size=12),
)
# Text as a user might type it: anything at all, JSON of any shape, or a mash of near-valid pieces.
user_text = st.one_of(
    st.text(),
    json_values.map(json.dumps),
    st.lists(_FRAGMENTS, min_size=1, max_size=6).map("".join),
    st.lists(_FRAGMENTS, min_size=1, max_size=4).map(" ".join),
)
