"""`rule-compiler notifications`: preferences, delivery records and stats, the in-app inbox."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from rule_compiler.cli import main
from rule_compiler.runtime.dispatch_plan import delivery_key
from rule_compiler.store import RuleStore
from rule_compiler.store import inbox as box
from rule_compiler.store import notifications as n
from rule_compiler.store import preferences as prefs_store
from rule_compiler.store.preferences import Preferences

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
ANN = ["--org", "acme", "--recipient", "ann@example.com"]


@pytest.fixture
def store_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert main(["--store", url, "db", "upgrade"]) == 0
    capsys.readouterr()
    return url


@pytest.fixture
def engine(store_url: str) -> Iterator[sa.Engine]:
    store = RuleStore(store_url)
    yield store.engine
    store.close()


def run(capsys: pytest.CaptureFixture[str], store_url: str, *argv: str) -> tuple[int, str, str]:
    code = main(["--store", store_url, "notifications", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def usage_error(capsys: pytest.CaptureFixture[str], store_url: str, *argv: str) -> str:
    """argparse's own exit (code 2) for a bad option value; its message."""
    with pytest.raises(SystemExit) as exc:
        main(["--store", store_url, "notifications", *argv])
    assert exc.value.code == 2
    return capsys.readouterr().err


# --- preferences ----------------------------------------------------------------------------------


def test_prefs_set_show_change_and_clear(
    capsys: pytest.CaptureFixture[str], store_url: str, engine: sa.Engine
) -> None:
    code, out, _ = run(
        capsys, store_url, "prefs", "set", *ANN, "--mute", "slack", "--mute", "email",
        "--quiet", "22:00-07:00", "--timezone", "Europe/Berlin", "--digest", "daily", "--digest-hour", "7",
        "--actor", "ann",
    )  # fmt: skip
    assert code == 0
    assert "muted:       email, slack" in out and "quiet hours: 22:00-07:00 Europe/Berlin" in out
    assert prefs_store.get_preferences(engine, "acme", "ann@example.com") == Preferences(
        organization="acme",
        recipient="ann@example.com",
        muted_channels=frozenset({"slack", "email"}),
        quiet_start=dt.time(22),
        quiet_end=dt.time(7),
        timezone="Europe/Berlin",
        digest="daily",
        digest_hour=7,
    )

    # Options not given are kept; --no-mute clears the muted channels.
    code, out, _ = run(capsys, store_url, "prefs", "set", *ANN, "--no-mute", "--digest", "off", "--json")
    assert code == 0
    assert json.loads(out) == {
        "organization": "acme",
        "recipient": "ann@example.com",
        "muted_channels": [],
        "quiet_start": "22:00",
        "quiet_end": "07:00",
        "timezone": "Europe/Berlin",
        "digest": "off",
        "digest_hour": 7,
    }
    code, out, _ = run(capsys, store_url, "prefs", "show", *ANN, "--json")
    assert code == 0 and json.loads(out)["quiet_start"] == "22:00"

    code, out, _ = run(capsys, store_url, "prefs", "set", *ANN, "--no-quiet")
    assert code == 0 and "quiet hours: none" in out

    code, out, _ = run(capsys, store_url, "prefs", "clear", *ANN)
    assert code == 0 and "cleared the preferences of ann@example.com in acme" in out
    assert prefs_store.get_preferences(engine, "acme", "ann@example.com") is None
    code, out, _ = run(capsys, store_url, "prefs", "show", *ANN)
    assert code == 0 and "no preferences for ann@example.com in acme" in out
    code, out, _ = run(capsys, store_url, "prefs", "show", *ANN, "--json")
    assert json.loads(out) is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--quiet", "25:00-07:00"], "argument --quiet: quiet hours must be a time 'HH:MM'"),
        (["--quiet", "22:00"], "argument --quiet: quiet hours must be 'HH:MM-HH:MM'"),
        (["--quiet", "07:00-07:00"], "argument --quiet: start and end must differ"),
        (["--timezone", "Mars/Olympus"], "argument --timezone: timezone 'Mars/Olympus' is not a known"),
        (["--mute", "pager"], "argument --mute: invalid choice: 'pager'"),
        (["--digest", "weekly"], "argument --digest: invalid choice: 'weekly'"),
        (["--digest-hour", "24"], "argument --digest-hour: must be a whole hour between 0 and 23"),
        (["--mute", "email", "--no-mute"], "argument --no-mute: not allowed with argument --mute"),
    ],
)
def test_prefs_set_bad_options_exit_2_naming_the_option(
    capsys: pytest.CaptureFixture[str], store_url: str, engine: sa.Engine, argv: list[str], message: str
) -> None:
    assert message in usage_error(capsys, store_url, "prefs", "set", *ANN, *argv)
    assert prefs_store.get_preferences(engine, "acme", "ann@example.com") is None


def test_a_store_without_tables_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, f"sqlite:///{tmp_path / 'empty.db'}", "prefs", "show", *ANN)
    assert code == 2 and "rule-compiler db upgrade" in err


# --- deliveries and stats -------------------------------------------------------------------------


def record(engine: sa.Engine, occurrence: str, channel: str, recipient: str, org: str = "acme") -> str:
    d = n.NotificationDelivery(
        idempotency_key=delivery_key(
            "rule-1", occurrence, "tell", None, channel=channel, recipient=recipient
        ),
        organization=org,
        rule_id="rule-1",
        action_id="tell",
        occurrence_id=occurrence,
        row_key=None,
        channel=channel,
        recipient=recipient,
    )
    n.start_delivery(engine, d, now=NOW)
    return d.idempotency_key


def test_deliveries_and_stats(capsys: pytest.CaptureFixture[str], store_url: str, engine: sa.Engine) -> None:
    sent = record(engine, "r1", "email", "ann@example.com")
    n.finish_delivery(engine, sent, status="sent", now=NOW)
    failed = record(engine, "r2", "slack", "ops-channel")
    n.finish_delivery(engine, failed, status="failed", now=NOW, error="slack answered HTTP 404\nno such hook")
    record(engine, "r3", "email", "bob@example.com", org="globex")

    code, out, _ = run(capsys, store_url, "deliveries", "--org", "acme")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    assert "slack → ops-channel  failed (1 attempt)" in lines[0]
    assert "error: slack answered HTTP 404 no such hook" in lines[0]
    assert "email → ann@example.com  sent (1 attempt)  at 2026-11-20 12:00 UTC" in lines[1]

    code, out, _ = run(capsys, store_url, "deliveries", "--status", "sent", "--channel", "email", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["idempotency_key"] for r in rows] == [sent]
    assert rows[0]["sent_at"] == "2026-11-20T12:00:00+00:00"

    code, out, _ = run(capsys, store_url, "deliveries", "--rule", "no-such-rule")
    assert code == 0 and "no deliveries recorded" in out

    code, out, _ = run(capsys, store_url, "stats", "--json")
    assert json.loads(out) == {"email": {"sending": 1, "sent": 1}, "slack": {"failed": 1}}
    code, out, _ = run(capsys, store_url, "stats", "--org", "acme")
    assert out.splitlines() == ["email: 1 (sent 1)", "slack: 1 (failed 1)"]

    assert "argument --status: invalid choice: 'lost'" in usage_error(
        capsys, store_url, "deliveries", "--status", "lost"
    )
    assert "argument --limit: must be between 1 and 1000" in usage_error(
        capsys, store_url, "deliveries", "--limit", "0"
    )


# --- the inbox ------------------------------------------------------------------------------------


def put(engine: sa.Engine, i: int, *, recipient: str = "ann", org: str = "acme") -> None:
    box.add_inbox_message(
        engine, idempotency_key=f"{i:064x}", organization=org, recipient=recipient, rule_id="rule-1",
        subject=f"order {i} is big", body="...", now=NOW + dt.timedelta(minutes=i),
    )  # fmt: skip


def test_inbox_list_and_read(capsys: pytest.CaptureFixture[str], store_url: str, engine: sa.Engine) -> None:
    for i in (1, 2, 3):
        put(engine, i)
    put(engine, 4, recipient="bob")
    owner = ["--org", "acme", "--recipient", "ann"]

    code, out, _ = run(capsys, store_url, "inbox", *owner, "--json")
    messages = json.loads(out)
    assert code == 0 and [m["subject"] for m in messages] == [
        "order 3 is big",
        "order 2 is big",
        "order 1 is big",
    ]
    first_id, bob_id = messages[-1]["id"], messages[0]["id"] + 1

    # Only ann's messages in acme change, whichever ids are named; options may come before `read`.
    code, out, _ = run(capsys, store_url, "inbox", "read", *owner, "--id", str(first_id), "--id", str(bob_id))
    assert code == 0 and out.strip() == "marked 1 message read"
    code, out, _ = run(capsys, store_url, "inbox", *owner, "--unread")
    assert [line.split()[1] for line in out.splitlines()] == ["unread", "unread"]
    assert "order 1 is big" not in out
    code, out, _ = run(capsys, store_url, "inbox", *owner, "read")
    assert out.strip() == "marked 2 messages read"
    code, out, _ = run(capsys, store_url, "inbox", *owner, "--unread")
    assert "no unread messages for ann in acme" in out
    code, out, _ = run(capsys, store_url, "inbox", "--org", "acme", "--recipient", "bob", "--unread")
    assert "order 4 is big" in out and out.count("unread") == 1


def test_inbox_without_its_owner_is_refused(capsys: pytest.CaptureFixture[str], store_url: str) -> None:
    code, _, err = run(capsys, store_url, "inbox", "--org", "acme")
    assert code == 2 and "inbox needs --recipient" in err
    code, _, err = run(capsys, store_url, "inbox", "read")
    assert code == 2 and "inbox needs --org and --recipient" in err
