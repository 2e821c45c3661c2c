"""The method lives in the repository: nothing cites files outside it, and every citation of
docs/method.md names a section that exists there."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

METHOD = REPO / "docs" / "method.md"

# The one file outside the repository that may be named: where CI provides the real
# CIFAR-10 subset (a data location, not a source of the method).
DATA_LOCATION = "shared/datasets/cifar10-subset.npz"

# Strings that are not references although they climb out of their folder.
NOT_REFERENCES = {
    (
        "tests/test_data.py",
        "../../planted.txt",
    ): "a crafted archive member that the CIFAR-10 reader must refuse",
    (
        ".ci/run",
        "../shared/tools/slurm/setup_single_node_slurm.sh",
    ): "the tool CI provides beside the clone to start a real SLURM cluster (a CI machine, not the method)",
}
# This file plants violations on purpose (test_the_checks_find_planted_violations).
CHECKER = "tests/test_docs.py"

FORBIDDEN = [
    (re.compile(r"\bspec\s+sections?\b", re.IGNORECASE), "cites the outside spec; cite docs/method.md §N"),
    (re.compile(r"\bspec\s*§", re.IGNORECASE), "cites the outside spec; cite docs/method.md §N"),
    (re.compile(r"paper\.md"), "names a method file outside the repository; cite docs/method.md"),
    (re.compile(r"shared/spec\b"), "names a folder outside the repository"),
    (re.compile(r"/work/|/home/"), "an absolute path of one machine"),
]
RELATIVE_PATH = re.compile(r"(?<![\w.])((?:\.\./)+[\w.{}\-/]*)")
# Python path arithmetic from a file's own location: Path(__file__)[.resolve()].parents[k] / "a" / "b".
FILE_PARENTS = re.compile(r"__file__\)(?:\.resolve\(\))?\.parents\[(\d+)\]((?:\s*/\s*\"[^\"]+\")*)")
# ... and from the repository root of the tests (conftest.REPO): REPO.parent / "a".
REPO_PARENT = re.compile(r"\bREPO\.parent((?:\s*/\s*\"[^\"]+\")*)")
CITATION = re.compile(r"docs/method\.md((?:\s*(?:,|;|and|or)?\s*§\s*\d+(?:\.\d+)*)+)")
SECTION_NUMBER = re.compile(r"§\s*(\d+(?:\.\d+)*)")
HEADING = re.compile(r"^#{2,4} §(\d+(?:\.\d+)*) \S", re.MULTILINE)


def repository_files(root: Path) -> list[str]:
    """Files git tracks, plus new files not yet added (but not ignored ones)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    result = subprocess.run(
        ["git", "-C", str(root), "ls-files", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"{root} is not a git checkout: {result.stderr.strip()}")
    return [name for name in result.stdout.splitlines() if (root / name).is_file()]


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None  # binary files hold no citations


def _joined(parts: str) -> str:
    return "/".join(re.findall(r"\"([^\"]+)\"", parts))


def outside_references(root: Path, name: str, text: str) -> list[str]:
    """Every place ``text`` (the file ``name`` of the repository at ``root``) refers outside ``root``.

    A relative path (``../x``) is read from the file's folder and must name something that
    exists inside the repository; the only outside path allowed is :data:`DATA_LOCATION`.
    """
    problems = []
    root = root.resolve()
    depth = len(Path(name).parts) - 1  # folders between the repository root and the file
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{name}:{number}"
        for pattern, why in FORBIDDEN:
            if pattern.search(line):
                problems.append(f"{where}: {why}: {line.strip()}")
        for match in RELATIVE_PATH.finditer(line):
            token = match.group(1).rstrip(".")
            if (name, token) in NOT_REFERENCES or token == f"../{DATA_LOCATION}":
                continue
            target = ((root / name).parent / token).resolve()
            if not (target.is_relative_to(root) and target.exists()):
                problems.append(f"{where}: {token!r} is not a path inside the repository: {line.strip()}")
        outside = [_joined(m.group(2)) for m in FILE_PARENTS.finditer(line) if int(m.group(1)) > depth]
        outside += [_joined(m.group(1)) for m in REPO_PARENT.finditer(line)]
        for path in outside:
            if path != DATA_LOCATION:
                problems.append(f"{where}: {path!r} is built beside the repository: {line.strip()}")
    return problems


def method_sections(method_text: str) -> set[str]:
    return set(HEADING.findall(method_text))


def unknown_citations(name: str, text: str, sections: set[str]) -> list[str]:
    """Citations "docs/method.md §N[.M]" in ``text`` whose section has no heading."""
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        for citation in CITATION.finditer(line):
            for section in SECTION_NUMBER.findall(citation.group(1)):
                if section not in sections:
                    problems.append(f"{name}:{number}: docs/method.md §{section} has no heading")
    return problems


def test_method_document_has_the_seven_sections():
    sections = method_sections(METHOD.read_text(encoding="utf-8"))
    assert {str(n) for n in range(1, 8)} <= sections, sorted(sections)


def test_no_file_refers_outside_the_repository():
    problems = []
    for name in repository_files(REPO):
        text = read_text(REPO / name)
        if text is not None and name != CHECKER:
            problems += outside_references(REPO, name, text)
    assert not problems, "\n".join(problems)


def test_every_method_citation_names_an_existing_section():
    method_text = METHOD.read_text(encoding="utf-8")
    sections = method_sections(method_text)
    problems = []
    for name in repository_files(REPO):
        text = read_text(REPO / name)
        if text is not None:
            problems += unknown_citations(name, text, sections)
    # The document's own cross-references ("§4.1") must resolve as well.
    for number, line in enumerate(method_text.splitlines(), start=1):
        if HEADING.match(line):
            continue
        for section in SECTION_NUMBER.findall(line):
            if section not in sections:
                problems.append(f"docs/method.md:{number}: §{section} has no heading")
    assert not problems, "\n".join(problems)


def test_the_checks_find_planted_violations(tmp_path):
    """Each kind of violation, planted in a scratch repository, is reported (the checks can fail)."""
    for folder in ("src", "workflow/rules", "workflow/scripts", "tests"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "workflow/scripts/x.py").write_text("")
    planted = {
        "spec citation": ("src/x.py", "# the grating set of spec section 3\n"),
        "spec file": ("README.md", "see ../shared/spec/paper.md for the method\n"),
        "sibling file": ("README.md", "read ../other-project/method.txt\n"),
        "missing file": ("workflow/rules/x.smk", 'script: "../scripts/missing.py"\n'),
        "beside the repo": (
            "tests/x.py",
            'NOTES = Path(__file__).resolve().parents[2] / "shared/notes.md"\n',
        ),
        "REPO.parent": ("tests/x.py", 'NOTES = REPO.parent / "shared" / "notes.md"\n'),
        "absolute path": ("src/x.py", "data in /work/shared/datasets\n"),
    }
    for kind, (name, line) in planted.items():
        assert outside_references(tmp_path, name, line), kind
    allowed = [
        ("README.md", "the subset at ../shared/datasets/cifar10-subset.npz (CI)\n"),
        ("tests/x.py", 'SUBSET = REPO.parent / "shared" / "datasets" / "cifar10-subset.npz"\n'),
        (
            "tests/x.py",
            'SUBSET = Path(__file__).resolve().parents[2] / "shared/datasets/cifar10-subset.npz"\n',
        ),
        ("workflow/scripts/y.py", 'SOURCE = Path(__file__).resolve().parents[2] / "src"\n'),
        ("workflow/rules/x.smk", 'script: "../scripts/x.py"\n'),
        ("src/x.py", "see docs/method.md §3\n"),
    ]
    for name, line in allowed:
        assert not outside_references(tmp_path, name, line), line
    sections = {"1", "3", "3.2"}
    assert unknown_citations("x.py", "docs/method.md §3.2 and §4", sections) == [
        "x.py:1: docs/method.md §4 has no heading"
    ]
    assert unknown_citations("x.py", "(docs/method.md §1; §3)", sections) == []


def test_architecture_lists_every_package_module():
    """docs/architecture.md's module table names every module of src/selectivity (dotted below it)."""
    table = (REPO / "docs" / "architecture.md").read_text()
    listed = set(re.findall(r"`([\w.]+)`", table))
    package = REPO / "src" / "selectivity"
    modules = {
        ".".join(path.relative_to(package).with_suffix("").parts)
        for path in package.rglob("*.py")
        if path.name != "__init__.py"
    }
    assert modules, f"no modules found under {package}"
    missing = sorted(modules - listed)
    assert not missing, f"docs/architecture.md does not list the modules {missing}"


MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
MARKDOWN_HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.MULTILINE)


def heading_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\*|_(?=\W)|(?<=\W)_", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _prose(markdown: str) -> str:
    """Markdown without its fenced code blocks (whose "# comments" are no headings, "[x](y)" no links)."""
    return re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)


def broken_links(root: Path, name: str, text: str) -> list[str]:
    """Relative Markdown links in ``text`` (the file ``name``) to a missing file or heading."""
    problems = []
    prose = _prose(text)
    for target in MARKDOWN_LINK.findall(prose):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto: ...
        path, _, anchor = target.partition("#")
        file = ((root / name).parent / path).resolve()
        if path and not file.exists():
            problems.append(f"{name}: link to {target!r}: no file {path!r}")
        elif anchor and (not path or file.suffix == ".md"):
            linked = _prose(file.read_text(encoding="utf-8")) if path else prose
            if anchor not in {heading_anchor(heading) for heading in MARKDOWN_HEADING.findall(linked)}:
                problems.append(f"{name}: link to {target!r}: {path or name} has no heading #{anchor}")
    return problems


def test_relative_links_of_the_markdown_files_name_existing_files_and_headings():
    problems = []
    for name in repository_files(REPO):
        if name.endswith(".md"):
            problems += broken_links(REPO, name, (REPO / name).read_text(encoding="utf-8"))
    assert not problems, "\n".join(problems)


def test_the_link_check_finds_broken_links(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## §2 Data and `training`\n")
    assert heading_anchor("§2 Data and `training`") == "2-data-and-training"
    good = "[a](docs/a.md) [b](docs/a.md#2-data-and-training) [c](#top) [d](https://example.org/x#y)\n# Top\n"
    assert broken_links(tmp_path, "README.md", good) == []
    bad = "[a](docs/b.md) [b](docs/a.md#performance) [c](#code)\n```\n# code\n[ignored](nowhere.md)\n```\n"
    assert [problem.split(": ")[2][:7] for problem in broken_links(tmp_path, "README.md", bad)] == [
        "no file",
        "docs/a.",
        "README.",
    ]
