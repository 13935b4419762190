"""Loading and running the scripts of ``benchmarks/`` from their tests (each test module keeps
a script from rotting by running its quick mode and checking the report's shape)."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["ROOT", "load", "positive", "quick_report", "run"]

ROOT = Path(__file__).resolve().parent.parent


def script(name: str) -> Path:
    """The path of ``benchmarks/<name>.py``."""
    return ROOT / "benchmarks" / f"{name}.py"


def load(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` imported as a module (registered under a private name: dataclasses
    look their module up while building classes)."""
    spec = importlib.util.spec_from_file_location(f"_benchmarks_{name}", script(name))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``benchmarks/<name>.py`` with ``args`` from the project root."""
    return subprocess.run(
        [sys.executable, str(script(name)), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )


def quick_report(name: str) -> dict[str, Any]:
    """The JSON report of the script's quick mode (which must exit 0)."""
    done = run(name, "--quick", "--json")
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def positive(value: object) -> bool:
    """A measured number: a finite, positive float."""
    return isinstance(value, float) and math.isfinite(value) and value > 0
