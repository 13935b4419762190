"""A real HTTP server process for the tests: ``prepaid-wallet serve`` on a free localhost port,
keys made with ``prepaid-wallet key create``, and a small client.

:class:`Server` starts the command line's ``serve`` in a process of its own (its standard error
-- the JSON access log -- in a file), waits until ``/ready`` answers, and stops it with SIGTERM
(graceful) and waits for its exit code.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

__all__ = ["Server", "cli", "free_port", "make_key", "money"]

_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A localhost port nothing listens on now.

    Under pytest-xdist each worker takes its own share of the ports (by half the port number
    modulo the number of workers: Linux hands out odd ports here), so two workers never both
    pick the port one of them is about to bind.
    """
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    mine = int(worker) % count if worker.isdigit() else 0
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port // 2 % count == mine:
            return port


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(_ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PREPAID_WALLET_DB", None)
    return env


def cli(url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``prepaid-wallet --db url ARGS`` in a process of its own."""
    done = subprocess.run([sys.executable, "-m", "prepaid_wallet", "--db", url, *args],
                          capture_output=True, text=True, env=_env(), timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"prepaid-wallet {' '.join(args)} exited {done.returncode}:"
                             f" {done.stderr}")
    return done


def make_key(url: str, tenant: str, *roles: str) -> str:
    """A new API key of ``tenant`` with ``roles``: its secret."""
    args = ["--json", "key", "create", "--tenant", tenant]
    for role in roles:
        args += ["--role", role]
    data = json.loads(cli(url, *args).stdout)
    secret = data["secret"]
    assert isinstance(secret, str)
    return secret


def money(amount: str, currency: str = "EUR") -> dict[str, str]:
    """Money as the API writes it."""
    return {"amount": amount, "currency": currency}


class _PortTaken(Exception):
    """The server could not bind its port: another process took it after the probe."""


class Server:
    """``prepaid-wallet serve`` over the store at ``url``, on a free port (another one if a
    process outside the tests takes the first between the probe and the bind)."""

    def __init__(self, url: str, log: Path, *, workers: int = 1,
                 extra: tuple[str, ...] = ()) -> None:
        self.url = url
        self.log_path = log
        for attempt in range(3):
            self.port = free_port()
            self.base = f"http://127.0.0.1:{self.port}"
            self._log = open(log, "w")  # noqa: SIM115 - closed in stop()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "prepaid_wallet", "--db", url, "serve", "--port",
                 str(self.port), "--workers", str(workers), "--graceful-timeout", "30", *extra],
                stdout=self._log, stderr=subprocess.STDOUT, env=_env(),
            )
            try:
                self._wait_ready()
                return
            except _PortTaken:
                self._log.close()
                if attempt == 2:
                    raise

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                written = self.log_path.read_text()
                if "address already in use" in written.lower():
                    raise _PortTaken(written)
                raise AssertionError(f"the server exited {self.process.returncode}: {written}")
            try:
                if httpx.get(f"{self.base}/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"the server did not get ready: {self.log_path.read_text()}")

    def client(self, secret: str | None = None, **options: Any) -> httpx.Client:
        """A client of this server with the key ``secret``."""
        headers = {} if secret is None else {"Authorization": f"Bearer {secret}"}
        return httpx.Client(base_url=self.base, headers=headers, timeout=60, **options)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Stop the server (SIGTERM: graceful) and return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def log_lines(self) -> list[str]:
        """What the server wrote (its access log among it)."""
        return self.log_path.read_text().splitlines()

    def access_log(self) -> list[dict[str, Any]]:
        """The access log's records."""
        found = []
        for line in self.log_lines():
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if "request_id" in record:
                    found.append(record)
        return found

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
