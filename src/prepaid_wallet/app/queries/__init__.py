"""The reads: functions of the :class:`~prepaid_wallet.app.environment.Environment` that each open
a read-only unit of work and never write, one module per kind of read (:mod:`.wallet`,
:mod:`.balance`, :mod:`.statement`, :mod:`.breakdown`, :mod:`.verification`).

Reads do not go through the command pipeline. Each module imports only what its reads need, and
the service imports a module on first use, so a balance read loads neither the command records,
the handlers, the rule modules nor the other reads."""
