"""The one JSON convention of every output (the command line's ``--json``, the demo's JSON
Lines): amounts carry their currency (``"12.50 EUR"``), instants are ISO 8601 in UTC."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

#: A decimal number written alone: an amount that lost its currency.
_BARE_AMOUNT = re.compile(r"[+-]?[0-9]+\.[0-9]+")
_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}")


def check_json_convention(data: Any, path: str = "$") -> int:
    """Assert the convention everywhere in ``data`` (parsed JSON); return how many amounts and
    instants were checked, so a caller can tell the check looked at something."""
    checked = 0
    if isinstance(data, dict):
        for key, value in data.items():
            checked += check_json_convention(value, f"{path}.{key}")
    elif isinstance(data, list):
        for i, value in enumerate(data):
            checked += check_json_convention(value, f"{path}[{i}]")
    elif isinstance(data, str):
        assert not _BARE_AMOUNT.fullmatch(data), f"{path}: {data!r} is an amount without currency"
        if _INSTANT.match(data):
            instant = datetime.fromisoformat(data)
            assert instant.utcoffset() == timedelta(0), f"{path}: {data!r} is not in UTC"
            assert data.endswith("+00:00"), f"{path}: {data!r} is not written in UTC"
            checked += 1
        elif re.fullmatch(r"-?[0-9]+(\.[0-9]+)? [A-Z]{3}", data):
            checked += 1
    elif isinstance(data, float):
        raise AssertionError(f"{path}: {data!r} is a float")
    return checked
