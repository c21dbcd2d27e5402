"""The repository's documents stand alone: no citation of files outside it, and METHOD.md's map
from the paper's equations to the code points at code that exists.

Checked without importing the cited modules (TensorFlow would load): each ``module:name`` is
looked up in its source file's syntax tree.
"""

import ast
import pathlib
import re
import subprocess

import pytest

from affect_tf.testing import REPO_ROOT

# Built by concatenation so that this file does not contain what it looks for.
OUTSIDE_FILES = ("PAPER" + ".md", "DECISIONS" + ".md", "DATASETS" + ".md", ".." + "/shared")
# A code citation in METHOD.md: `affect_tf.module.path:name` or `...:Class.method`.
CITATION = re.compile(r"`(affect_tf(?:\.\w+)+):([A-Za-z_][\w.]*)`")
_SKIPPED_DIRS = {".git", ".venv", "__pycache__", "node_modules"}


def _tracked_files() -> list[pathlib.Path]:
    """The repository's tracked files (git ls-files), or a walk of the checkout without git."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], cwd=REPO_ROOT, capture_output=True,
                                check=True, timeout=60).stdout
        names = [name for name in listed.decode("utf-8").split("\0") if name]
        return [REPO_ROOT / name for name in names]
    except (OSError, subprocess.SubprocessError):
        return [path for path in REPO_ROOT.rglob("*")
                if path.is_file() and not _SKIPPED_DIRS & set(path.parts)
                and not any(part.endswith(".egg-info") for part in path.parts)]


def _text(path: pathlib.Path) -> str | None:
    """The file's text, or None for a binary file (NUL bytes or not UTF-8) or a missing one."""
    try:
        data = path.read_bytes()
    except OSError:
        return None  # Listed by git but deleted in the work tree.
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def test_no_file_cites_documents_outside_the_repository():
    files = _tracked_files()
    assert any(path.name == "README.md" for path in files), "the file list is empty"
    found = []
    for path in files:
        text = _text(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if any(name in line for name in OUTSIDE_FILES):
                found.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}")
    assert not found, ("Cite METHOD.md (or state the fact) instead of files outside the "
                       "repository:\n" + "\n".join(found))


@pytest.fixture(scope="module")
def method_text():
    return (REPO_ROOT / "METHOD.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("number", range(1, 9))
def test_method_names_every_equation_of_the_paper(method_text, number):
    assert re.search(rf"\*\*Eq\. {number}\.?\*\*", method_text), (
        f"METHOD.md should state Eq. {number} in bold where it maps it to the code")


def _module_source(module: str) -> pathlib.Path:
    """The source file of ``affect_tf.a.b`` in the checkout (``affect_tf.datasets`` lives in the
    top-level ``datasets/`` folder)."""
    parts = module.split(".")[1:]
    root = REPO_ROOT / "affect_tf"
    if parts and parts[0] == "datasets":
        root, parts = REPO_ROOT / "datasets", parts[1:]
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    raise AssertionError(f"METHOD.md cites module {module}, which has no source file {base}.py")


def _defines(tree: ast.Module, dotted: str) -> bool:
    """Whether ``dotted`` (``name`` or ``Class.member``) is defined at the top of ``tree``."""
    scope = tree.body
    for name in dotted.split("."):
        match = None
        for node in scope:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if node.name == name:
                    match = node
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(getattr(target, "id", None) == name for target in targets):
                    match = node
        if match is None:
            return False
        scope = getattr(match, "body", [])
    return True


def test_every_code_path_method_cites_exists(method_text):
    citations = sorted(set(CITATION.findall(method_text)))
    assert len(citations) >= 30, "METHOD.md maps the paper to the code by module:function"
    missing = []
    trees = {}
    for module, name in citations:
        if module not in trees:
            trees[module] = ast.parse(_module_source(module).read_text(encoding="utf-8"))
        if not _defines(trees[module], name):
            missing.append(f"{module}:{name}")
    assert not missing, f"METHOD.md cites code that does not exist: {missing}"


# A pointer into METHOD.md from another file: a section by number or quoted title, or an item
# of its lists of choices (C1, ...) and deviations (D1, ...).
POINTER = re.compile(r'METHOD\.md,? (?:section (\d+)|"([^"]+)"|([CD]\d+)\b)')


def _unwrapped(text: str) -> str:
    """Text with line breaks (and the comment marks of wrapped comment lines) as single spaces,
    so a pointer wrapped over two lines reads whole."""
    return re.sub(r"\s*\n\s*(?:#\s*)?", " ", text)


def test_every_pointer_into_method_names_a_part_it_has(method_text):
    titles = {match.group(2).strip(): match.group(1) for match in
              re.finditer(r"^## (\d+)\. (.+)$", method_text, flags=re.MULTILINE)}
    items = set(re.findall(r"\*\*([CD]\d+)\.", method_text)) | set(
        re.findall(r"^\| (D\d+) \|", method_text, flags=re.MULTILINE))
    broken = []
    for path in _tracked_files():
        text = _text(path)
        if text is None or path.name == "METHOD.md" or "METHOD.md" not in text:
            continue
        for number, title, item in POINTER.findall(_unwrapped(text)):
            if (number and number not in titles.values()) or (title and title not in titles) or (
                    item and item not in items):
                broken.append(f"{path.relative_to(REPO_ROOT)}: {number or title or item}")
    assert not broken, f"Pointers to parts METHOD.md does not have: {broken}"


def test_the_readme_and_the_module_map_point_to_method():
    assert "METHOD.md" in (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "METHOD.md" in (REPO_ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
