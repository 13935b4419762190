"""The commands that prove the store: ``verify`` (check every stored fact, optionally against
checkpoints kept elsewhere), ``checkpoint`` (a digest of the journal to keep elsewhere) and
``seal`` (seal every stored row again, with a new key or without one). See docs/integrity.md."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from prepaid_wallet.cli.framework import (
    _ONE,
    ExitCode,
    _Context,
    _Family,
    _OnFirstUse,
    read_seal_key,
)
from prepaid_wallet.cli.output import _Progress
from prepaid_wallet.text import printable

if TYPE_CHECKING:
    from prepaid_wallet import _codec
    from prepaid_wallet.results import Checkpoint

if not TYPE_CHECKING:  # imported when first used
    _codec = _OnFirstUse("prepaid_wallet._codec")


def _checkpoints(path: str) -> list[Checkpoint]:
    """The checkpoints in the file at ``path``, one per line (blank lines and lines starting
    with ``#`` are skipped); ``InvalidInputError`` naming ``against`` for a file that cannot
    be read, ``checkpoint`` for a line that is not one."""
    from prepaid_wallet.errors import InvalidInputError
    from prepaid_wallet.results import Checkpoint

    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except (OSError, UnicodeDecodeError):
        raise InvalidInputError("against", "must name a readable file of checkpoints",
                                path) from None
    return [Checkpoint.from_text(line) for line in lines
            if line.strip() and not line.lstrip().startswith("#")]


def _verify(ctx: _Context) -> ExitCode:
    against = [] if ctx.args.against is None else _checkpoints(ctx.args.against)
    counts = {"entries": 0, "wallets": 0}
    problems = 0
    with _Progress("verify") as progress:
        def track(phase: str, done: int) -> None:
            counts[phase] = done
            progress(phase, done)

        for problem in ctx.service.iter_verify(progress=track, against=against):
            problems += 1
            if ctx.json:
                ctx.emit({"record": "problem", **_codec.to_data(problem)})
            else:
                ctx.line(printable(f"{problem.code} {problem.subject}: {problem.detail}"))
    if ctx.json:
        ctx.emit({"record": "summary", "entries": counts["entries"],
                  "wallets": counts["wallets"], "checkpoints": len(against),
                  "problems": problems, "ok": not problems})
    else:
        anchored = f" against {len(against)} checkpoint(s)" if against else ""
        ctx.line(f"checked {counts['entries']} entries and {counts['wallets']} wallets"
                 f"{anchored}: {f'{problems} problem(s)' if problems else 'ok'}")
    return ExitCode.STORAGE if problems else ExitCode.OK


def _checkpoint(ctx: _Context) -> ExitCode:
    import os

    point = ctx.service.checkpoint()
    line = point.to_text()
    if ctx.args.append is not None:
        with open(ctx.args.append, "a", encoding="utf-8") as file:
            file.write(line + "\n")
            file.flush()
            os.fsync(file.fileno())
    if ctx.json:
        ctx.emit({"record": "checkpoint", "entries": point.entries,
                  "last_entry_id": point.last_entry_id, "digest": point.digest,
                  "taken_at": point.taken_at.isoformat(), "text": line})
    else:
        ctx.line(line)
    return ExitCode.OK


def _seal(ctx: _Context) -> ExitCode:
    new = None if ctx.args.without_key else read_seal_key(ctx.args.with_key_file)
    done = ctx.service.reseal(new)
    after = "without a key" if new is None else f"with key {new.key_id!r}"
    if ctx.json:
        ctx.emit({"record": "sealed", "rows": done,
                  "key_id": None if new is None else new.key_id})
    else:
        ctx.line(f"sealed {done} row(s) {after}: open the store {after} from now on")
    return ExitCode.OK


COMMANDS = _Family()


@COMMANDS.command("verify", _verify)
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--against", metavar="FILE",
                   help="a file of checkpoints (one per line, as 'checkpoint' prints them):"
                        " the journal must still begin with the entries of each")


@COMMANDS.command("checkpoint", _checkpoint)
def _(p: argparse.ArgumentParser) -> None:
    p.add_argument("--append", metavar="FILE",
                   help="also append the checkpoint to FILE (kept outside the store)")


@COMMANDS.command("seal", _seal, _ONE)
def _(p: argparse.ArgumentParser) -> None:
    key = p.add_mutually_exclusive_group(required=True)
    key.add_argument("--with-key-file", metavar="FILE",
                     help="seal with the key in FILE ('<key id>:<hex>', at least 32 bytes)")
    key.add_argument("--without-key", action="store_true",
                     help="seal without a key (plain SHA-256 seals)")
