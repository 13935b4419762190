"""Wallet rules an operator configures once and the library enforces on every operation: pure
decisions that return values (layer 5: they never touch storage, the clock or the environment).

* :mod:`prepaid_wallet.rules.operations` -- the kinds of operation rules speak of;
* :mod:`prepaid_wallet.rules.limits` -- counts and totals per window, and a maximum balance;
* :mod:`prepaid_wallet.rules.fees` -- fixed and percentage fees, and periodic fees;
* :mod:`prepaid_wallet.rules.topup` -- automatic top-ups and the payment gateway they charge;
* :mod:`prepaid_wallet.rules.reminders` -- low-balance thresholds and the events they emit.
"""
