"""The manual cannot drift from the code: docs/cli.md is the parser's own rendering, every path
and link the docs name exists, the architecture page names every layer, the README stays a door."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.cli import REFERENCE, reference_markdown

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# generated folders (bench/.cache/, test-artifacts/, …): named in the docs, absent from a clean clone
IGNORED = tuple(line.strip().strip("/") for line in (ROOT / ".gitignore").read_text().splitlines()
                if line.strip().endswith("/"))
CODE_PATH = re.compile(r"`((?:pipelines|pages|tests|bench|surveys|notebooks|docs)/[^`*<>\s]*)`")


def test_cli_reference_is_generated_from_the_parser() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == reference_markdown(), \
        "docs/cli.md is out of date: run `make docs`"


def test_readme_is_a_door_not_a_manual() -> None:
    assert (ROOT / "README.md").stat().st_size <= 10 * 1024


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_and_named_paths_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    missing = [link for link in LINK.findall(text)
               if "://" not in link and not (page.parent / link).exists()]
    missing += [path for path in CODE_PATH.findall(text)
                if not path.startswith(IGNORED)
                and not (ROOT / path.rstrip("/").split("::")[0]).exists()]
    assert not missing, f"{page.name} names files that do not exist: {missing}"


def test_architecture_page_names_every_layer() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    layers = sorted(p.name for p in (ROOT / "pipelines").iterdir()
                    if p.is_dir() and (p / "__init__.py").exists())
    assert [layer for layer in layers if f"`pipelines/{layer}/`" not in text] == []
