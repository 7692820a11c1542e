"""The README and docs/ hold together: every relative link resolves, every anchor is a
heading on the page it points at (GitHub's slugs), and every ``--dyncheck-...`` option
they name exists.

The checker itself is tested on small documents with a broken link, a broken anchor and an
unknown option, so a pass here means the pages were read, not that nothing was looked at.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_OPTION = re.compile(r"--dyncheck(?:-[a-z0-9]+)*")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, with their 1-based numbers."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed,
    spaces turned into hyphens (``Agreement: a — b`` -> ``agreement-a--b``)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a page; repeated headings get ``-1``, ``-2``, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(text):
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(text: str) -> list[tuple[int, str]]:
    """The link and image targets in a page's prose (not in code blocks or code spans)."""
    found = []
    for number, line in prose_lines(text):
        line = _CODE_SPAN.sub("", line)
        for pattern in (_LINK, _IMAGE):
            found.extend((number, match.group(1)) for match in pattern.finditer(line))
    return found


def broken_links(page: Path) -> list[str]:
    """Each relative link of ``page`` whose file or heading does not exist, as ``file:line``."""
    problems = []
    for number, target in links(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, mailto:, ...
            continue
        path, _, anchor = target.partition("#")
        where = f"{page.relative_to(page.parent.parent) if page.parent.name == 'docs' else page.name}:{number}"
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            problems.append(f"{where}: {target} -> no such file")
            continue
        if anchor and resolved.suffix == ".md":
            if anchor not in anchors(resolved.read_text(encoding="utf-8")):
                problems.append(f"{where}: {target} -> no heading #{anchor} in {resolved.name}")
    return problems


def named_options(text: str) -> set[str]:
    return set(_OPTION.findall(text))


def plugin_options() -> set[str]:
    """The option names ``dyncheck/plugin.py`` registers with ``addoption``."""
    tree = ast.parse((ROOT / "dyncheck" / "plugin.py").read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "addoption":
            names.update(
                arg.value
                for arg in node.args
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("--")
            )
    return names


@pytest.fixture(scope="module")
def known_options() -> set[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    helps = ""
    for args in (["--help"], ["audit", "--help"]):
        result = subprocess.run(
            [sys.executable, "-m", "dyncheck", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        helps += result.stdout
    return named_options(helps) | plugin_options()


def test_the_pages_exist():
    names = {page.name for page in PAGES}
    assert {"README.md", "invariants.md", "spec.md", "inference.md", "options.md", "reference-models.md",
            "known-limits.md", "development.md", "audit.md", "configuration.md", "ci.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_option_named_exists(page, known_options):
    assert named_options(page.read_text(encoding="utf-8")) - known_options == set()


def test_every_docs_page_is_linked_from_the_readme():
    readme = {target.partition("#")[0] for _, target in links((ROOT / "README.md").read_text(encoding="utf-8"))}
    assert {f"docs/{page.name}" for page in PAGES[1:]} <= readme


def test_the_readme_opens_with_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```bash\n(.*?)```", text, re.DOTALL).group(1)
    assert first_block.splitlines()[0].startswith("make check ")
    assert first_block.splitlines()[1].startswith("make test ")
    assert len(text.encode()) < 12_000, "the README is the five-minute page: reference goes to docs/"


# The checker, on documents made to fail it.


def test_slugs_follow_github():
    assert slug("Agreement: devices, dtypes, compilation — and batches") == (
        "agreement-devices-dtypes-compilation--and-batches"
    )
    assert slug("Big models: time budget, memory, parallel runs") == "big-models-time-budget-memory-parallel-runs"
    assert slug("`grad_isolation`") == "grad_isolation"
    assert slug("Auditing a model: `dyncheck audit`") == "auditing-a-model-dyncheck-audit"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


def test_broken_links_and_anchors_are_found(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "other.md").write_text("# Other\n\n## Real section\n")
    page = docs / "page.md"
    page.write_text(
        "# Page\n\n"
        "[fine](other.md#real-section) [also](#page) [web](https://example.com/x.md)\n"
        "[gone](missing.md) [bad anchor](other.md#no-such-section) [here](#nowhere)\n"
        "`[in code](missing-too.md)`\n"
        "```\n[in a block](missing-three.md)\n```\n"
    )
    assert broken_links(page) == [
        "docs/page.md:4: missing.md -> no such file",
        "docs/page.md:4: other.md#no-such-section -> no heading #no-such-section in other.md",
        "docs/page.md:4: #nowhere -> no heading #nowhere in page.md",
    ]


def test_an_unknown_option_is_found(known_options):
    text = "Use `--dyncheck-seed=1` and `--dyncheck-only`, not `--dyncheck-sed 1`; every `--dyncheck-...` option."
    assert named_options(text) - known_options == {"--dyncheck-sed"}
