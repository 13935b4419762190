"""Every script in examples/ runs to completion, and the quickstart tells its story.

Each example runs in a fresh interpreter (the one running the tests), in an empty temporary
directory (what an example writes, such as the quickstart's SQLite file, stays there), so a new
script in examples/ is checked without touching this file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from prepaid_wallet import Money, format_money

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
QUICKSTART = ROOT / "examples" / "quickstart.py"

# format_money follows CLDR: fr_FR puts no-break spaces (U+00A0, U+202F) around "€" and between
# thousands. Tests compare against ordinary spaces, and build the amounts they expect with
# format_money (what an amount looks like in fr_FR is babel's data, tested in test_formatting).
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " "})


def fr(amount: str) -> str:
    """An amount of euros as the quickstart prints it (fr_FR), with ordinary spaces."""
    return format_money(Money.of(amount, "EUR"), "fr_FR").translate(_SPACES)


def run(script: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


def test_examples_are_found() -> None:
    assert QUICKSTART in EXAMPLES


@pytest.mark.parametrize("script", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_exits_cleanly(script: Path, tmp_path: Path) -> None:
    result = run(script, tmp_path)
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout}\n{result.stderr}"
    assert result.stderr == ""
    assert result.stdout.strip(), f"{script.name} printed nothing"


@pytest.mark.parametrize("script", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_run_again_on_its_store_is_refused_in_one_line(script: Path,
                                                              tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'again.db'}"
    first = run(script, tmp_path, "--db", db)
    assert first.returncode == 0, first.stderr
    before = (tmp_path / "again.db").read_bytes()
    again = run(script, tmp_path, "--db", db)
    assert again.returncode == 1
    assert again.stdout == ""
    assert again.stderr.count("\n") == 1, again.stderr
    assert "already holds" in again.stderr
    assert (tmp_path / "again.db").read_bytes() == before


def _lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [line.translate(_SPACES).rstrip() for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def quickstart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("quickstart")


@pytest.fixture(scope="module")
def quickstart_lines(quickstart_dir: Path) -> list[str]:
    return _lines(run(QUICKSTART, quickstart_dir))


def test_quickstart_refuses_the_credit_only_order_with_a_top_up(
    quickstart_lines: list[str],
) -> None:
    assert (
        f"order 1001 for alice ({fr('42.50')}, credit only): refused, shortfall {fr('12.50')},"
        f" suggested top-up {fr('12.50')}"
    ) in quickstart_lines


def test_quickstart_pays_the_order_after_the_top_up(quickstart_lines: list[str]) -> None:
    top_up = quickstart_lines.index(f"alice tops up {fr('12.50')} (e_000004)")
    paid = quickstart_lines.index(f"order 1001 for alice: paid {fr('42.50')} (e_000005)")
    assert top_up < paid


def test_quickstart_expires_the_rest_of_the_award(quickstart_lines: list[str]) -> None:
    assert f"order 1002 for bruno: paid {fr('4.00')} from lot_000001 {fr('4.00')}" in (
        quickstart_lines
    )
    assert f"expiry sweep: 1 lot expired, {fr('6.00')} booked as breakage" in quickstart_lines


def test_quickstart_prints_statements_in_french_format(quickstart_lines: list[str]) -> None:
    start = quickstart_lines.index("Statement of alice (w_000001), amounts in fr_FR")
    alice = [line.split() for line in quickstart_lines[start + 1 : start + 5]]
    assert alice == [
        f"02/03/2026 top_up +{fr('30.00')} total {fr('30.00')}".split(),
        f"03/03/2026 top_up +{fr('12.50')} total {fr('42.50')}".split(),
        f"03/03/2026 spend {fr('-42.50')} total {fr('0.00')} order 1001".split(),
        f"closing total {fr('0.00')}".split(),
    ]
    start = quickstart_lines.index("Statement of bruno (w_000002), amounts in fr_FR")
    breakage = f"11/03/2026 breakage {fr('-6.00')} total {fr('50.00')}".split()
    assert quickstart_lines[start + 4].split()[: len(breakage)] == breakage
    assert quickstart_lines[start + 5] == f"  closing total {fr('50.00')}"


def test_quickstart_journal_verifies(quickstart_lines: list[str]) -> None:
    assert quickstart_lines[-1] == "journal verified: 7 entries, 0 problems"


def test_quickstart_keeps_its_wallets_in_a_sqlite_file_read_back_after_reopening(
    quickstart_lines: list[str], quickstart_dir: Path
) -> None:
    assert (quickstart_dir / "quickstart.db").is_file()
    start = quickstart_lines.index("reopened sqlite:///quickstart.db:")
    assert quickstart_lines[start + 1 : start + 3] == [
        f"  alice: available {fr('0.00')}",
        f"  bruno: available {fr('50.00')}",
    ]


def test_quickstart_starts_over_on_its_own_file_and_tells_the_same_story(
    quickstart_lines: list[str], quickstart_dir: Path
) -> None:
    assert _lines(run(QUICKSTART, quickstart_dir)) == quickstart_lines


def test_quickstart_runs_on_the_memory_store(quickstart_lines: list[str], tmp_path: Path) -> None:
    lines = _lines(run(QUICKSTART, tmp_path, "--db", "memory:"))
    assert not list(tmp_path.iterdir())
    story = quickstart_lines.index("reopened sqlite:///quickstart.db:")
    assert lines[:story] == quickstart_lines[:story]
    assert lines[-1] == quickstart_lines[-1]


def _readme_main_job() -> list[str]:
    """The README's set-up command that installs the library and runs its main job, split at
    ``&&``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Set up"):]
    command = next(line.strip() for line in section.splitlines()
                   if line.startswith("    python3 -m venv"))
    return [part.strip() for part in command.split("&&")]


def test_the_readme_main_job_is_the_demo_and_runs_again_and_again(tmp_path: Path) -> None:
    parts = _readme_main_job()
    assert parts[:2] == ["python3 -m venv .venv", ".venv/bin/pip install ."]
    # The rest, with this interpreter (where the library is installed) for the console script.
    rest = " && ".join(parts[2:]).replace(".venv/bin/prepaid-wallet",
                                          f"'{sys.executable}' -m prepaid_wallet")
    assert rest.endswith("--db sqlite:///demo.db demo")
    for _ in range(2):  # it starts over on every run
        done = subprocess.run(rest, shell=True, cwd=tmp_path, capture_output=True, text=True,
                              encoding="utf-8", timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        out = done.stdout.splitlines()
        assert out[0].startswith("Day 1 · ")
        assert "  journal: 24 entries, verified, nothing wrong" in out
    assert (tmp_path / "demo.db").is_file()


def test_hub_checkout_credits_the_top_up_once_and_the_credit_owed_once(tmp_path: Path) -> None:
    lines = [line.strip() for line in _lines(run(ROOT / "examples" / "hub_checkout.py",
                                                  tmp_path))]
    assert lines[lines.index("webhook 1: 1 credited") + 1] == "webhook 2: 0 credited"
    assert "order-1 of €55.00: credit €40.00, card €15.00" in lines
    assert "Mia removes an item, order-1 is now €32.50: credit €32.50, card €0.00" in lines
    assert "staff-jo credits €4.80 owed; open €4.80" in lines
    assert "asked again: no credit owed, nothing changes" in lines
    assert lines[-1] == "Journal verified: True (8 entries)"


def test_payg_upgrade_pays_expires_reconverts_and_unlinks(tmp_path: Path) -> None:
    lines = [line.strip() for line in _lines(run(ROOT / "examples" / "payg_upgrade.py",
                                                  tmp_path))]
    ksh = lambda text: format_money(Money.of(text, "KES"), "en_KE")  # noqa: E731
    # Amina: 500.00 at 50.00 a day is ten days; her downpayment is paid by two payments held in
    # the window, and the 100.00 beyond it is 30 hours at 80.00 a day
    assert f"payment {ksh('500.00')}  time   10d 00h00  at {ksh('50.00')}/day (a-1)".split() \
        == lines[2].split()
    assert any(line.split()[:2] == ["downpayment", ksh("1000.00")]
               and line.endswith("(a-2, a-3)") for line in lines)
    assert f"surplus {ksh('100.00')} time 1d 06h00 at {ksh('80.00')}/day".split() in [
        line.split() for line in lines]
    # Baraka: at the deadline the upgrade expires and the held 200.00 buys 4 days at 50.00
    assert "the window ends: upgrade upg_000002 expired" in lines
    assert f"payment {ksh('200.00')} time 4d 00h00 at {ksh('50.00')}/day (b-2)".split() in [
        line.split() for line in lines]
    # Chiku's and Dalmar's past payments are turned back into money
    assert f"reconversion -{ksh('1000.00')} time -20d 00h00 at {ksh('50.00')}/day (c-2)".split() \
        in [line.split() for line in lines]
    assert "conv-d still links d-1; unlinked d-2" in lines
    assert lines[-1] == "Journal verified: True (21 entries)"
