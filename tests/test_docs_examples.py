"""The code in docs/python-api.md runs, against a real sandbox, and prints what the page says.

Markers in the page: `<!-- docs-test: file NAME -->` before a python block writes it as a module;
`<!-- docs-test: run -->` before a python block runs it as a script, and the ```text block right
after it is the exact stdout expected. Blocks run in page order, in one folder.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import anyio
import pytest

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]

DOCS = Path(__file__).resolve().parents[1] / "docs"
MARKED = re.compile(
    r"<!-- docs-test: (?P<what>file (?P<name>\S+)|run) -->\n```python\n(?P<code>.*?)```\n"
    r"(?:\n```text\n(?P<expected>.*?)```\n)?",
    re.S,
)


def marked_blocks(page: str) -> list[re.Match[str]]:
    return list(MARKED.finditer((DOCS / page).read_text()))


def test_the_page_has_runnable_examples() -> None:
    blocks = marked_blocks("python-api.md")
    runs = [b for b in blocks if b["what"] == "run"]
    assert len(runs) >= 5 and all(b["expected"] for b in runs)


def test_the_concepts_page_has_runnable_examples() -> None:
    runs = [b for b in marked_blocks("concepts.md") if b["what"] == "run"]
    assert runs and all(b["expected"] for b in runs)


@pytest.mark.parametrize("page", ["python-api.md", "concepts.md"])
async def test_python_api_examples(sandbox_env, tmp_path, page: str) -> None:
    work = tmp_path / "docs-examples"
    work.mkdir()
    for index, block in enumerate(marked_blocks(page)):
        if block["name"]:
            (work / block["name"]).write_text(block["code"])
            continue
        script = work / f"example_{index}.py"
        script.write_text(block["code"])
        result = await anyio.run_process([sys.executable, str(script)], cwd=work, check=False)
        stdout, stderr = result.stdout.decode(), result.stderr.decode()
        assert result.returncode == 0, f"example {index} failed:\n{block['code']}\n{stderr}"
        assert stdout == block["expected"], f"example {index} printed:\n{stdout}"


def test_exit_codes_page_lists_every_error_with_its_code() -> None:
    from asyncrun import _exceptions

    page = (DOCS / "exit-codes.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \| (\d+) \|", page, re.M))
    assert rows == {name: str(getattr(_exceptions, name).exit_code) for name in _exceptions.__all__}


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", markdown, flags=re.S), re.M)
    return {"".join(c for c in h.lower() if c.isalnum() or c in " -_").replace(" ", "-") for h in headings}


def test_links_between_pages_resolve() -> None:
    broken = []
    for page in sorted(DOCS.glob("*.md")):
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if "://" in target:
                continue
            path, _, anchor = target.partition("#")
            file = DOCS / path if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target}")
                continue
            if anchor and anchor not in _anchors(file.read_text()):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []
