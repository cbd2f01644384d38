"""README and docs/ point at things that exist: links and their anchors, repository paths, the map of the code.

Docs drift silently when code moves; these checks make a moved module or a renamed heading fail here
instead of in a reader's browser.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Code spans starting with one of these folders name a file or folder of this repository.
SOURCE_FOLDERS = ("base-image", "bench", "config", "deployer", "devlms", "docs", "sandbox", "sifu", "tests")

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
PYTHON_MODULE = re.compile(r"python -m ([\w.]+)")


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def prose(page: Path) -> str:
    return FENCE.sub("", page.read_text())


def heading_anchors(page: Path) -> set[str]:
    """GitHub's anchors: lower case, punctuation dropped, spaces become hyphens."""
    headings = re.findall(r"^#+ (.+)$", prose(page), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def git_ignored() -> set[str]:
    lines = (ROOT / ".gitignore").read_text().splitlines()
    return {line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")}


def exists(relative: str) -> bool:
    return any(ROOT.glob(relative.rstrip("/"))) if "*" in relative else (ROOT / relative).exists()


def test_docs_has_pages():
    assert len(PAGES) > 1, "docs/ holds the operator's and developer's pages"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_relative_link_and_anchor_resolves(page):
    broken = []
    for target in LINK.findall(prose(page)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto:: not ours to check offline
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in heading_anchors(linked):
            broken.append(f"{target}: no heading with anchor #{anchor} in {linked.name}")
    assert not broken, f"{page_id(page)} links to what is not there:\n" + "\n".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_repository_paths_in_code_spans_exist(page):
    text = prose(page)
    ignored = git_ignored()
    missing = []
    for span in CODE_SPAN.findall(text):
        path = span.split(":")[0]
        if path.split("/")[0] in SOURCE_FOLDERS and "/" in path and " " not in path and path not in ignored:
            if not exists(path):
                missing.append(path)
    for module in PYTHON_MODULE.findall(page.read_text()):
        parts = module.split(".")
        if parts[0] in SOURCE_FOLDERS:
            base = ROOT.joinpath(*parts)
            if not (base.with_suffix(".py").exists() or (base / "__main__.py").exists()):
                missing.append(f"python -m {module}")
    assert not missing, f"{page_id(page)} names paths that are not in the tree:\n" + "\n".join(missing)


def code_map_entries(readme: str) -> list[str]:
    """The paths the README's map of the code names: a tree of `name/` folders, two spaces per level."""
    block = readme.split("<!-- code map", 1)[1].split("```", 2)[1]
    paths, parents = [], []
    for line in block.splitlines()[1:]:
        indent = len(line) - len(line.lstrip())
        if not line.strip() or indent >= 10:
            continue  # a blank line or a description's continuation
        depth = indent // 2
        names = re.split(r"\s{2,}", line.strip())[0]
        parents = parents[:depth]
        for name in names.split(", "):
            paths.append("".join(parents) + name)
        if names.endswith("/"):
            parents.append(names)
    return paths


def test_the_map_of_the_code_matches_the_tree():
    entries = code_map_entries((ROOT / "README.md").read_text())
    assert "deployer/cli/" in entries and "tests/unit/" in entries
    missing = [entry for entry in entries if not exists(entry)]
    assert not missing, "README's map of the code names what is not in the tree:\n" + "\n".join(missing)
