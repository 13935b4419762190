"""Shared pytest configuration: hypothesis profiles, and the ``store`` fixture.

``dev`` (quick, for local runs) is the default; ``ci`` (thorough) is loaded when the ``CI``
environment variable is ``"true"``. ``HYPOTHESIS_PROFILE=<name>`` overrides both.

``store`` is a fresh, empty store of each backend :func:`tests.backends.available_backends`
gives (PostgreSQL when the tests have a server), closed after the test; a module or class that
needs stores of its own defines a ``store`` fixture of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
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


@pytest.fixture(params=sorted(available_backends()))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store of each backend."""
    made = available_backends()[request.param](tmp_path)
    yield made
    made.close()
