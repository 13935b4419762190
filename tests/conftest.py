"""Shared pytest configuration: hypothesis profiles.

``dev`` (quick, for local runs) is the default; ``ci`` (thorough) is loaded when the ``CI``
environment variable is ``"true"``. ``HYPOTHESIS_PROFILE=<name>`` overrides both.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile("ci", max_examples=300, deadline=None, derandomize=False, print_blob=True)

settings.load_profile(
    os.environ.get(
        "HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI", "").lower() == "true" else "dev"
    )
)
