"""Shared pytest configuration: the suite on every core, hypothesis profiles, and the ``store``
fixture.

The suite runs in parallel with pytest-xdist: ``-n auto`` (one worker process per core) and
``--dist loadgroup`` (tests marked ``@pytest.mark.xdist_group(name)`` run on one worker, one after
the other) unless the command line says otherwise. ``-n 0`` or ``-p no:xdist`` runs it in this
one process; ``-n 4`` picks the number of workers; ``--pdb`` runs serially.

``dev`` (quick, for local runs) is the default; ``ci`` (thorough) is loaded when the ``CI``
environment variable is ``"true"``. ``HYPOTHESIS_PROFILE=<name>`` overrides both.

``store`` is a fresh, empty store of each backend :func:`tests.backends.available_backends`
gives (PostgreSQL when the tests have a server), closed after the test; a module or class that
needs stores of its own defines a ``store`` fixture of its own.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from prepaid_wallet import Store
from tests.backends import available_backends

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile("ci", max_examples=300, deadline=None, derandomize=False, print_blob=True)

settings.load_profile(
    os.environ.get(
        "HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI", "").lower() == "true" else "dev"
    )
)


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Generator[None, object, object]:
    """Default to ``-n auto --dist loadgroup`` when pytest-xdist is loaded and no ``-n`` was given
    (a wrapper, so it runs before xdist reads the options; never in a worker)."""
    option = config.option
    if (
        getattr(option, "numprocesses", 0) is None  # xdist loaded, no -n on the command line
        and not hasattr(config, "workerinput")
        and not option.usepdb
    ):
        option.numprocesses = "auto"
    if getattr(option, "numprocesses", None) and option.dist == "no":
        option.dist = "loadgroup"
    return (yield)


@pytest.fixture(params=sorted(available_backends()))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store of each backend."""
    made = available_backends()[request.param](tmp_path)
    yield made
    made.close()
