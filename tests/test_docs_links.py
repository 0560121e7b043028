"""The repository's Markdown stands on its own: every relative link resolves inside the
repository, no link leaves it (``../shared``, absolute paths), every cited test exists,
every setting is documented and ``docs/sources.md`` names real modules.

Links are read with markdown-it-py (CommonMark plus tables), so code blocks and inline code
are not mistaken for links and reference-style links are resolved as a renderer would.
Anchors (``file.md#section``) are checked against the target's headings, slugged the way
GitHub does (lower case, punctuation dropped, spaces to hyphens).
"""

from __future__ import annotations

import ast
import re
from functools import cache
from itertools import pairwise
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from patron.config import Settings

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "patron"
DOCS = ROOT / "docs"
SOURCES = DOCS / "sources.md"
CONFIGURATION = DOCS / "configuration.md"
# Markdown read by people who clone the repository: its root and docs/.
DOC_FILES = sorted([*ROOT.glob("*.md"), *DOCS.rglob("*.md")])
# `tests/customers/test_endpoints.py::test_if_match`, or a bare test module path.
TEST_REF = re.compile(r"\btests/[\w/]+\.py(?:::\w+)?")
SOURCE_IDS = {"S0", "S1", "S2", "S3", "S4"}


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


@cache
def _tokens(path: Path) -> list[Token]:
    return _markdown().parse(path.read_text(encoding="utf-8"))


def _links(path: Path) -> list[str]:
    """Every link and image target of ``path``, in order (reference links resolved)."""
    found: list[str] = []
    for token in _tokens(path):
        for child in token.children or ():
            if child.type == "link_open":
                found.append(str(child.attrGet("href") or ""))
            elif child.type == "image":
                found.append(str(child.attrGet("src") or ""))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text: lower case, characters other than word
    characters, spaces and hyphens dropped, each space a hyphen."""
    kept = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return kept.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """The anchors GitHub makes for the headings of ``path`` (repeats get ``-1``, ``-2``)."""
    tokens = _tokens(path)
    seen: dict[str, int] = {}
    out: set[str] = set()
    for opening, inline in pairwise(tokens):
        if opening.type != "heading_open":
            continue
        text = "".join(
            c.content for c in inline.children or () if c.type in {"text", "code_inline"}
        )
        base = slug(text)
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return frozenset(out)


def link_problem(doc: Path, href: str) -> str | None:
    """Why ``href`` in ``doc`` is a bad link, or None when it is fine."""
    parts = urlsplit(href)
    if parts.scheme in {"http", "https", "mailto"}:
        return None
    if parts.scheme or parts.netloc:
        return f"{href}: only http(s), mailto and relative links are allowed"
    if "shared" in Path(unquote(parts.path)).parts and ".." in href:
        return f"{href}: points at ../shared, which a clone does not have"
    if parts.path.startswith("/"):
        return f"{href}: absolute path; use a link relative to {doc.relative_to(ROOT)}"
    target = (doc.parent / unquote(parts.path)).resolve() if parts.path else doc
    if not target.is_relative_to(ROOT):
        return f"{href}: leaves the repository"
    if not target.exists():
        return f"{href}: {target.relative_to(ROOT)} does not exist"
    if parts.fragment and target.suffix == ".md" and parts.fragment not in anchors(target):
        return f"{href}: no heading #{parts.fragment} in {target.relative_to(ROOT)}"
    return None


def test_the_docs_named_in_the_readme_exist() -> None:
    assert {"architecture.md", "api-guide.md", "operations.md", "configuration.md"} <= {
        p.name for p in DOCS.glob("*.md")
    }
    readme_links = set(_links(ROOT / "README.md"))
    for name in ("architecture", "api-guide", "operations", "configuration", "sources"):
        assert f"docs/{name}.md" in readme_links, name
    assert {"LICENSE", "CHANGELOG.md"} <= readme_links


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves_inside_the_repository(doc: Path) -> None:
    problems = [p for href in _links(doc) if (p := link_problem(doc, href))]
    assert problems == []
    assert "../shared" not in doc.read_text(encoding="utf-8")


def test_the_link_check_refuses_what_a_clone_cannot_follow(tmp_path: Path) -> None:
    doc = DOCS / "architecture.md"
    assert link_problem(doc, "../../shared/API.md") is not None
    assert link_problem(doc, "/work/shared/ARCHITECTURE.md") is not None
    assert link_problem(doc, "../../../etc/passwd") is not None
    assert link_problem(doc, "missing.md") is not None
    assert link_problem(doc, "api-guide.md#no-such-heading") is not None
    assert link_problem(doc, "file:///etc/passwd") is not None
    assert link_problem(doc, "api-guide.md") is None
    assert link_problem(doc, "https://www.rfc-editor.org/rfc/rfc9457") is None
    assert slug("Paging: `page`, `cursor` and totals") == "paging-page-cursor-and-totals"


def _defines(module: Path, name: str) -> bool:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name
        for node in ast.walk(tree)
    )


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_cited_test_exists(doc: Path) -> None:
    missing = []
    for ref in TEST_REF.findall(doc.read_text(encoding="utf-8")):
        path, _, name = ref.partition("::")
        module = ROOT / path
        if not module.is_file() or (name and not _defines(module, name)):
            missing.append(ref)
    assert missing == []


def _source_rows() -> list[list[str]]:
    """The body rows of every table in docs/sources.md, as lists of cell source text."""
    rows: list[list[str]] = []
    row: list[str] | None = None
    in_body = False
    tokens = _tokens(SOURCES)
    for i, token in enumerate(tokens):
        if token.type == "tbody_open":
            in_body = True
        elif token.type == "tbody_close":
            in_body = False
        elif in_body and token.type == "tr_open":
            row = []
        elif in_body and token.type == "td_open" and row is not None:
            row.append(tokens[i + 1].content if tokens[i + 1].type == "inline" else "")
        elif in_body and token.type == "tr_close" and row is not None:
            rows.append(row)
    return rows


def test_sources_map_every_source_to_real_modules_tests_and_a_status() -> None:
    rows = _source_rows()
    assert len(rows) >= 40
    seen: set[str] = set()
    for capability, source, where, test, status in rows:
        ids = set(re.findall(r"S\d", source))
        assert ids <= SOURCE_IDS, capability
        seen |= ids
        assert status == "done" or status.startswith("planned: "), (capability, status)
        if status == "done":
            assert TEST_REF.search(test), f"{capability}: a done row names its test"
            paths = re.findall(r"`([^`]+)`", where)
            assert paths, f"{capability}: a done row names where it lives"
            for path in paths:
                clean = path.split("::")[0].rstrip("/")
                assert (SRC / clean).exists() or (ROOT / clean).exists(), (capability, path)
    assert seen == SOURCE_IDS


def test_every_setting_is_documented() -> None:
    text = CONFIGURATION.read_text(encoding="utf-8")
    undocumented = sorted(
        name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in text
    )
    assert undocumented == []
