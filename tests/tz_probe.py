"""Run a probe script here and in subprocesses with another ``TZ``, to show that results do not
depend on the process time zone. A probe is Python source defining ``probe()`` that returns a
JSON-able dict (and prints it as JSON when run as ``__main__``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

__all__ = ["PROCESS_ZONES", "probe_here", "probe_in_subprocess"]

#: Two process zones far apart (UTC+14 and a zone with DST in the southern hemisphere).
PROCESS_ZONES = ("Pacific/Kiritimati", "America/Santiago")


def probe_here(source: str) -> dict[str, Any]:
    """``probe()`` of ``source`` in this process."""
    namespace: dict[str, Any] = {"__name__": "probe"}
    exec(source, namespace)
    result: dict[str, Any] = namespace["probe"]()
    return result


def probe_in_subprocess(source: str, env_tz: str) -> dict[str, Any]:
    """``probe()`` of ``source`` in a new interpreter whose ``TZ`` is ``env_tz``."""
    env = {**os.environ, "TZ": env_tz}
    out = subprocess.run(
        [sys.executable, "-c", source], env=env, capture_output=True, text=True, check=True,
        timeout=120,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result
