"""The lock files, pyproject.toml, the README's test command and CI agree with each other.

``requirements/dev.txt`` and ``requirements/lowest.txt`` are written by ``.ci/lock`` from
pyproject.toml; CI installs from them. These checks read files only (no network): a range
changed in pyproject.toml without regenerating the locks, a floor that the lowest-versions run
does not test, or a classifier for a CPython that CI does not run, fails here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
CI_RUN = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
LOCKS = {"dev": ROOT / "requirements" / "dev.txt", "lowest": ROOT / "requirements" / "lowest.txt"}


def direct_requirements() -> list[Requirement]:
    """The run-time requirements and those of the extras CI installs (postgres and dev)."""
    lines = [*PROJECT["dependencies"]]
    for extra in ("postgres", "dev"):
        lines += PROJECT["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


def pins(lock: Path) -> dict[str, list[Version]]:
    """The versions a lock file pins for each package: one, or one per marker (a universal lock
    may pin a package differently for different Pythons or platforms)."""
    found: dict[str, list[Version]] = {}
    for raw in lock.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier  # exactly one: "=="
        assert specifier.operator == "==", raw
        assert not requirement.extras, raw  # pip refuses extras in a constraints file
        found.setdefault(canonicalize_name(requirement.name), []).append(
            Version(specifier.version)
        )
    return found


def floor(specifier: SpecifierSet) -> Version:
    """The lower bound of a range: the version of its one ``>=`` clause."""
    lower = [Version(s.version) for s in specifier if s.operator == ">="]
    assert len(lower) == 1, f"{specifier!s} needs one lower bound (>=) for the lowest run"
    return lower[0]


def ci_pythons() -> list[str]:
    """The CPython versions .ci/run runs the suite on, oldest first."""
    match = re.search(r'^TESTED_PYTHONS="([0-9. ]+)"$', CI_RUN, re.MULTILINE)
    assert match is not None, ".ci/run must set TESTED_PYTHONS"
    return match.group(1).split()


@pytest.mark.parametrize("name", sorted(LOCKS))
def test_locks_pin_every_package_exactly_and_not_the_project(name: str) -> None:
    pinned = pins(LOCKS[name])
    assert canonicalize_name(PROJECT["name"]) not in pinned
    assert pinned  # an empty lock would pin nothing and pass everything else


def test_every_requirement_has_a_floor() -> None:
    for requirement in direct_requirements():
        floor(requirement.specifier)


@pytest.mark.parametrize("requirement", direct_requirements(), ids=str)
def test_the_dev_lock_pins_each_direct_requirement_inside_its_range(
    requirement: Requirement,
) -> None:
    pinned = pins(LOCKS["dev"])
    name = canonicalize_name(requirement.name)
    assert name in pinned, f"{name} is not in requirements/dev.txt: run bash .ci/lock"
    for version in pinned[name]:
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements/dev.txt pins {name} {version}, outside {requirement.specifier}:"
            " run bash .ci/lock"
        )


@pytest.mark.parametrize("requirement", direct_requirements(), ids=str)
def test_the_lowest_lock_pins_each_direct_requirement_at_its_floor(
    requirement: Requirement,
) -> None:
    pinned = pins(LOCKS["lowest"])
    name = canonicalize_name(requirement.name)
    assert name in pinned, f"{name} is not in requirements/lowest.txt: run bash .ci/lock"
    assert pinned[name] == [floor(requirement.specifier)], (
        f"requirements/lowest.txt pins {name} {pinned[name]}, but pyproject.toml says"
        f" {requirement.specifier}: the floor is not what the lowest run tests (run bash"
        " .ci/lock; if the resolver cannot use the floor, raise it)"
    )


def test_the_locks_were_made_for_the_oldest_supported_python() -> None:
    oldest = ci_pythons()[0]
    for lock in LOCKS.values():
        assert f"--python-version {oldest}" in lock.read_text(encoding="utf-8"), lock
    assert f"OLDEST_PYTHON={oldest}\n" in (ROOT / ".ci" / "lock").read_text(encoding="utf-8")


def test_classifiers_name_exactly_the_pythons_ci_tests() -> None:
    tested = ci_pythons()
    assert len(tested) >= 2
    classifiers = PROJECT["classifiers"]
    assert "Programming Language :: Python :: 3 :: Only" in classifiers
    versions = [
        c.removeprefix("Programming Language :: Python :: ")
        for c in classifiers
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert versions == tested
    # CI tests the oldest version the library accepts.
    assert PROJECT["requires-python"] == f">={tested[0]}"


def test_the_readme_test_command_installs_from_the_lock_and_ci_runs_it() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [line.strip() for line in readme.splitlines()
                if line.startswith("    ") and line.strip().endswith(".venv/bin/pytest")]
    assert len(commands) == 1, commands
    (command,) = commands
    assert command == (
        "python3 -m venv .venv && .venv/bin/pip install -c requirements/dev.txt -e '.[dev]'"
        " && .venv/bin/pytest"
    )
    # .ci/run runs the same line, word for word, and docs/development.md shows it.
    assert any(line.strip() == command for line in CI_RUN.splitlines())
    development = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    assert f"    {command}\n" in development
