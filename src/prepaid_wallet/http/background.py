"""Webhook delivery in the background of a server worker (``prepaid-wallet serve
--webhooks``): a thread that runs one delivery pass (the fan-out of the outbox, then the due
deliveries, signed) every ``interval`` seconds, and stops when the server does, after the pass
it is in. Several workers may each run one: a delivery is claimed by one at a time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from prepaid_wallet.app.ports import Store

__all__ = ["Deliveries"]

_log = logging.getLogger("prepaid_wallet.http.webhooks")


class Deliveries:
    """A thread delivering the store's webhooks every ``interval`` seconds."""

    def __init__(self, store: Store, *, interval: float = 5.0,
                 retry_schedule: Sequence[timedelta] | None = None,
                 service_options: dict[str, Any] | None = None) -> None:
        from prepaid_wallet.service import WalletService

        self.service = WalletService(store, **(service_options or {}))
        self.interval = interval
        self.retry_schedule = retry_schedule
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)

    def start(self) -> None:
        """Start delivering."""
        self._thread.start()

    def stop(self) -> None:
        """Stop, after the pass in progress."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.service.deliver_webhooks(retry_schedule=self.retry_schedule)
            except Exception:  # logged; the next pass tries again
                _log.exception("a webhook delivery pass failed")
            else:
                if report.delivered or report.retried or report.failed:
                    _log.info("webhooks: %d delivered, %d to retry, %d failed",
                              len(report.delivered), len(report.retried), len(report.failed))
            self._stop.wait(self.interval)
