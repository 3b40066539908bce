"""The README and docs/ stay true: size, Quickstart, links, the example specs, the CLI
cheat-sheet and the Makefile targets they show, and docstrings that cite nothing outside the
repository."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CODE_FOLDERS = ("flows", "tasks", "models", "scripts")

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
# What a docstring may not cite: notes outside the repository, or a design file it does not have.
OUTSIDE = [
    re.compile(r"STACK-NOTES"),
    re.compile(r"\bDESIGN\.md\b"),
    re.compile(r"/work/"),
    re.compile(r"(?<![\w/.-])shared/"),  # a relative "shared/..." path (not an example like /shared/landing)
]
DOCS_PAGE = re.compile(r"\bdocs/[\w./-]+\.md\b")


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def code_blocks(text: str, language: str | None = None) -> list[str]:
    return [body for lang, body in FENCE.findall(text) if language is None or lang == language]


def heading_anchors(text: str) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to dashes."""
    anchors = set()
    for line in text.splitlines():
        m = re.match(r"^#{1,6}\s+(.*)$", line)
        if m:
            title = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower())
            anchors.add(title.replace(" ", "-"))
    return anchors


def without_code(text: str) -> str:
    return FENCE.sub("", text)


# --------------------------------------------------------------------------- the README


def test_readme_is_under_10_kb():
    size = len(README.read_bytes())
    assert size < 10 * 1024, f"README.md is {size} bytes; move detail into docs/"


def test_readme_quickstart_shows_make_demo_and_make_test():
    blocks = "\n".join(code_blocks(README.read_text()))
    lines = [line.split("#")[0].strip() for line in blocks.splitlines()]
    assert "make demo" in lines
    assert "make test" in lines


def test_readme_links_into_docs_index():
    assert "docs/index.md" in LINK.findall(README.read_text())


# --------------------------------------------------------------------------- links


def test_every_relative_link_points_to_a_file_that_exists():
    broken = []
    for page in markdown_files():
        text = page.read_text()
        for target in LINK.findall(without_code(text)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in heading_anchors(dest.read_text()):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(sorted(set(broken)))


def test_the_link_checker_catches_a_missing_page(tmp_path):
    page = tmp_path / "x.md"
    page.write_text("see [a](a.md), [b](https://example.org), `[c](c.md)`\n```\n[d](d.md)\n```\n")
    targets = [t for t in LINK.findall(without_code(page.read_text())) if not t.startswith("http")]
    assert targets == ["a.md", "c.md"]
    assert heading_anchors("# Batches for monitoring and scoring\n## The `score` flow") == {
        "batches-for-monitoring-and-scoring", "the-score-flow"}


# --------------------------------------------------------------------------- examples that run


def example_specs() -> list[tuple[str, str]]:
    found = []
    for page in (README, DOCS / "getting-started.md"):
        if page.exists():
            found += [(page.name, body) for body in code_blocks(page.read_text(), "yaml")]
    return found


def test_the_readme_has_a_minimal_spec_of_about_20_lines():
    specs = code_blocks(README.read_text(), "yaml")
    assert len(specs) == 1
    assert 15 <= len(specs[0].splitlines()) <= 25


@pytest.mark.parametrize("page,body", example_specs(), ids=[f"{page}-{i}" for i, (page, _) in enumerate(example_specs())])
def test_every_example_spec_validates(page, body, tmp_path):
    from models.spec import load_spec_file

    name = re.search(r"^name:\s*(\S+)", body, flags=re.MULTILINE).group(1)
    path = tmp_path / f"{name}.yaml"
    path.write_text(body)
    spec = load_spec_file(path)
    assert spec.name == name
    assert spec.feature_columns, f"{page}: the example spec has no features"


def cheat_sheet() -> list[str]:
    text = README.read_text()
    section = text.split("## Command line", 1)[1]
    block = code_blocks(section)[0]
    return [line.split("#")[0].strip() for line in block.splitlines() if line.startswith("finml ")]


PLACEHOLDERS = {"N": "1", "S": "60"}  # values for the cheat-sheet's placeholders (TEXT stays text)


class CliLineError(ValueError):
    """A cheat-sheet line the CLI would refuse."""


def parse_cli_line(line: str) -> None:
    """Parse one ``finml ...`` line with the real CLI (commands, options, types, required values)
    without running it; optional parts in brackets are included.

    Typer ships its own copy of click, so groups are recognised by their ``get_command`` method
    and usage errors by their class name.

    Raises:
        CliLineError: the CLI would refuse the line.
    """
    from typer.main import get_command

    from flows.cli import app

    args = [PLACEHOLDERS.get(a, a) for a in shlex.split(line.replace("[", " ").replace("]", " "))[1:]]
    command = get_command(app)
    ctx = command.context_class(command, info_name="finml")
    while hasattr(command, "get_command"):
        if not args:
            raise CliLineError(f"{line!r}: a subcommand is missing")
        name, args = args[0], args[1:]
        sub = command.get_command(ctx, name)
        if sub is None:
            raise CliLineError(f"{line!r}: no command {name!r}")
        command, ctx = sub, sub.context_class(sub, info_name=name, parent=ctx)
    try:
        command.make_context(ctx.info_name, list(args), parent=ctx.parent)
    except Exception as err:
        if any(cls.__name__ == "UsageError" for cls in type(err).__mro__):
            raise CliLineError(f"{line!r}: {err}") from err
        raise


def test_every_cheat_sheet_command_parses_with_the_cli():
    lines = cheat_sheet()
    assert len(lines) >= 10
    for line in lines:
        parse_cli_line(line)


@pytest.mark.parametrize("line", [
    "finml train credit_risk --nope",            # no such option
    "finml registry alias credit_risk challenger --to 2",  # --reason is required
    "finml registry alias credit_risk challenger --to x --reason r",  # --to is an integer
    "finml registry frobnicate",                 # no such command
    "finml score credit_risk --batch b.csv",     # --out is required
    "finml registry",                            # a subcommand is missing
])
def test_the_cheat_sheet_check_rejects_a_wrong_line(line):
    with pytest.raises(CliLineError):
        parse_cli_line(line)


def make_targets_shown(text: str) -> set[str]:
    shown = set(re.findall(r"`make ([a-z][\w-]*)", text))
    for block in code_blocks(text):
        shown |= set(re.findall(r"^make ([a-z][\w-]*)", block, flags=re.MULTILINE))
    return shown


def test_every_make_target_shown_exists_in_the_makefile():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, flags=re.MULTILINE))
    missing = {
        f"{page.relative_to(ROOT)}: make {t}"
        for page in markdown_files() for t in make_targets_shown(page.read_text()) if t not in targets
    }
    assert not missing, f"targets shown but not in the Makefile: {sorted(missing)}"


# --------------------------------------------------------------------------- docstrings


def docstrings(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield getattr(node, "name", "<module>"), doc


def code_files() -> list[Path]:
    return sorted(p for folder in CODE_FOLDERS for p in (ROOT / folder).rglob("*.py"))


def test_no_docstring_cites_a_path_outside_the_repository():
    offences = []
    for path in code_files():
        for where, doc in docstrings(path):
            for pattern in OUTSIDE:
                for m in pattern.finditer(doc):
                    offences.append(f"{path.relative_to(ROOT)} ({where}): {m.group(0)!r}")
    assert not offences, "docstrings citing files outside the repository:\n" + "\n".join(offences)


def test_every_docs_page_a_docstring_cites_exists():
    missing = []
    for path in code_files():
        for where, doc in docstrings(path):
            for cited in DOCS_PAGE.findall(doc):
                if not (ROOT / cited).is_file():
                    missing.append(f"{path.relative_to(ROOT)} ({where}): {cited}")
    assert not missing, "docstrings citing docs pages that do not exist:\n" + "\n".join(missing)


def test_the_docstring_checks_catch_what_they_should(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text('"""See ``/work/shared/STACK-NOTES.md``, shared/notes.md and DESIGN.md; docs/x.md."""\n'
                      'def f():\n    """Batch at /shared/landing/x.parquet."""\n')
    found = {where: doc for where, doc in docstrings(sample)}
    assert sum(bool(p.search(found["<module>"])) for p in OUTSIDE) == 4
    assert not any(p.search(found["f"]) for p in OUTSIDE)
    assert DOCS_PAGE.findall(found["<module>"]) == ["docs/x.md"]
