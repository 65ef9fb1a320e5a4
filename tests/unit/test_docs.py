"""The README and docs/ stay true to the tree and to the CLI: every relative link resolves (file and heading), and
the README's command table names every ``smm`` command with every one of its options."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from scheduler.cli import cli

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
COMMON = {"--config", "--verbose", "--help"}


def _links(page: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", page.read_text(encoding="utf-8")))


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", page.read_text(encoding="utf-8")), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in _links(page):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no such heading in {linked.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def test_docs_are_linked_from_the_readme() -> None:
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in _links(ROOT / "README.md")}
    assert [p.name for p in PAGES[1:] if p.resolve() not in linked] == []


def _commands(group: click.Group, prefix: str = "smm") -> list[tuple[str, click.Command]]:
    """Every command, those the root group imports lazily too; a group that runs by itself is one as well."""
    found = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            if command.invoke_without_command:
                found.append((path, command))
            found += _commands(command, path)
        else:
            found.append((path, command))
    return found


def _table_rows() -> dict[str, str]:
    """The README's command table: each row's command path (``smm db upgrade``) to the whole row."""
    rows = {}
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| `(smm(?: [a-z][a-z-]*)*)", line)
        if match:
            rows[match.group(1)] = line
    return rows


def test_the_command_table_has_every_command_and_option() -> None:
    rows = _table_rows()
    commands = _commands(cli)
    assert len(commands) >= 10
    missing = []
    for path, command in commands:
        row = rows.get(path)
        if row is None:
            missing.append(path)
            continue
        for param in command.params:
            if isinstance(param, click.Option) and not COMMON & set(param.opts):
                long = max(param.opts, key=len)
                if not re.search(rf"(?<![\w-]){re.escape(long)}(?![\w-])", row):
                    missing.append(f"{path} {long}")
    assert missing == []
    assert "| `smm --version`" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_adapters_import_nothing_of_the_scheduler() -> None:
    """docs/architecture.md: adapters/ imports its own modules and client libraries, never scheduler/ or SQLAlchemy."""
    import ast

    found = []
    for source in sorted((ROOT / "adapters").rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            found += [
                f"{source.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in ("scheduler", "sqlalchemy")
            ]
    assert found == []


def test_architecture_names_every_module() -> None:
    """docs/architecture.md has a row per module of scheduler/ and adapters/ (a new module needs one)."""
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    modules = []
    for package in ("scheduler", "adapters"):
        for path in sorted((ROOT / package).iterdir()):
            if (path.suffix == ".py" and path.name != "__init__.py") or (path / "__init__.py").exists():
                modules.append((path, f"`{path.name}/`" if path.is_dir() else f"`{path.name}`"))
    missing = [str(path.relative_to(ROOT)) for path, name in modules if name not in page]
    assert missing == [], f"add a row for each to docs/architecture.md: {missing}"
