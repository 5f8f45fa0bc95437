"""What a run's task logs say, from real `dag.test()` runs against the demo database: each row's or
event's condition verdicts (values hidden unless ``AUTOMATION_LOG_VALUES`` opts in, the first 50 in
full), one outcome line per action, and the note a run that matched nothing gets from the
scheduler's listener (``rule_engine.run_notes``; ``dag.test()`` moves the run's state through the same
``DagRun.update_state`` that calls it).

``dag.test()`` runs the tasks in this process; their log records go to standard output, which is
what these tests read (``capfd``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.events import install
from rule_compiler.runtime.verdicts import LOGGED_ITEMS
from rule_compiler.store import RuleStore
from tests.airflow.conftest import apply_rules, dagbag
from tests.conftest import ROOT

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]

RULE = """\
kind: rule
name: {name}
organization: acme
description: Paid orders of customers whose email ends with {suffix}.
trigger: {{type: manual, target: {{connection: app_db, table: orders}}}}
conditions:
  all:
    - {{field: status, operator: equals, value: paid}}
    - {{field: customer__email, operator: endswith, value: "{suffix}"}}
actions:
  - id: tag
    type: update_record
    connection: app_db
    table: orders
    values: {{priority: high}}
"""
EXTRA_ORDERS = 60  # 40 demo orders + 60: more rows than a task log shows in full


def _rows(engine: sa.Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


def _more_orders(engine: sa.Engine) -> int:
    with engine.begin() as conn:
        for i in range(EXTRA_ORDERS):
            conn.execute(
                sa.text(
                    "INSERT INTO orders (customer_id, status, total, priority) VALUES (:c, :s, 50, 'normal')"
                ),
                {"c": 1 + i % 5, "s": "paid" if i % 2 else "pending"},
            )
    return int(_rows(engine, "SELECT COUNT(*) AS n FROM orders")[0]["n"])


def _apply(store: RuleStore, tmp_path: Path, name: str, suffix: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(RULE.format(name=name, suffix=suffix))
    (dag_id,) = apply_rules(store, path)
    return dag_id


def _section(out: str, start: str, end: str) -> str:
    """The log text from the first ``start`` to the first ``end`` after it."""
    assert start in out, f"{start!r} is not in the task log"
    text = out[out.index(start) :]
    return text[: text.index(end)] if end in text else text


def _note(dag_run: Any) -> str | None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        stored = session.get(DagRun, dag_run.id)
        assert stored is not None
        return stored.note


def test_the_evaluate_log_shows_each_rows_verdicts_without_values_and_the_outcome_per_action(
    store: RuleStore, app_db: sa.Engine, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    from airflow.utils.state import DagRunState

    monkeypatch.delenv("AUTOMATION_LOG_VALUES", raising=False)
    total = _more_orders(app_db)
    dag_id = _apply(store, tmp_path, "tag-example-customers", ".example")
    emails = [row["email"] for row in _rows(app_db, "SELECT email FROM customers WHERE email IS NOT NULL")]
    capfd.readouterr()

    dag_run = dagbag().dags[dag_id].test()

    out = capfd.readouterr().out
    assert dag_run.state == DagRunState.SUCCESS
    log = store.get_run(dag_id=dag_id, run_id=dag_run.run_id)
    assert log is not None and log.matched_count > 0
    verdicts = _section(out, "condition verdicts of", "rows matched")
    assert f"condition verdicts of {LOGGED_ITEMS} of {total} rows (row values hidden;" in verdicts
    heads = re.findall(r"row \[(\d+)\]: ([✓✗]) (matched|no match)", verdicts)
    assert [int(key) for key, _, _ in heads] == list(range(1, LOGGED_ITEMS + 1))  # the first 50, in order
    assert (
        f"... {total - LOGGED_ITEMS} more rows not shown (a task log shows the first {LOGGED_ITEMS})"
        in verdicts
    )
    # each verdict is the automation log's (which keeps the values) without them
    traced = {row["key"]: row for row in log.trace["rows"]}
    for key, mark, _ in heads:
        assert traced[f"[{key}]"]["matched"] is (mark == "✓")
    first_match = next(key for key, mark, _ in heads if mark == "✓")
    entry = verdicts[verdicts.index(f"row [{first_match}]: ✓ matched") :].splitlines()[:4]
    assert [line.strip().split(" [airflow")[0] for line in entry[1:]] == [
        "✓ all",
        "✓ status equals 'paid'",
        "✓ customer__email endswith '.example'",
    ]
    assert f"{log.matched_count} of {total} rows matched" in out
    assert "matched keys: [" in verdicts
    # no row value anywhere in the run's output: neither the emails the condition read nor "[seen: ...]"
    assert "[seen:" not in out
    assert not [email for email in emails if email in out]
    # record_outcome: one line per action
    assert (
        f"action tag: success, 1 attempt; acted on {log.matched_count}, skipped 0, failed 0 "
        f"(already_applied 0, applied {log.matched_count}, missing_row 0)"
    ) in out
    assert f"outcome: success ({log.matched_count} matched)" in out
    assert _note(dag_run) is None  # a run that matched gets no note


def test_values_show_only_when_the_deployment_opts_in_and_a_run_without_match_gets_a_note(
    store: RuleStore, app_db: sa.Engine, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    from airflow.utils.state import DagRunState, TaskInstanceState

    monkeypatch.setenv("AUTOMATION_LOG_VALUES", "true")
    total = _more_orders(app_db)
    dag_id = _apply(store, tmp_path, "tag-nobody", ".nowhere")
    capfd.readouterr()

    dag_run = dagbag().dags[dag_id].test()

    out = capfd.readouterr().out
    assert dag_run.state == DagRunState.SUCCESS
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states["tag"] == TaskInstanceState.SKIPPED
    verdicts = _section(out, "condition verdicts of", "rows matched")
    assert f"condition verdicts of {LOGGED_ITEMS} of {total} rows:" in verdicts  # no "values hidden"
    first_paid = _rows(
        app_db,
        "SELECT o.id, c.email FROM orders o JOIN customers c ON c.id = o.customer_id "
        "WHERE o.status = 'paid' ORDER BY o.id LIMIT 1",
    )[0]
    entry = verdicts[verdicts.index(f"row [{first_paid['id']}]: ✗ no match") :].splitlines()[:4]
    assert (
        entry[3]
        .strip()
        .startswith(
            f"✗ customer__email endswith '.nowhere'  [seen: {first_paid['email']!r}]  "
            f"'customer__email' is {first_paid['email']!r}"
        )
    )
    assert f"0 of {total} rows matched" in out
    note = f"no match: 0 of {total} rows"
    assert f"outcome: no_match ({note}); the actions did not run" in out
    assert _note(dag_run) == note  # set on the run by the listener, as the scheduler does


def test_an_event_rules_log_names_each_event_and_why_it_was_ignored(
    store: RuleStore, app_db: sa.Engine, capfd: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.delenv("AUTOMATION_LOG_VALUES", raising=False)
    install(app_db, "orders")
    (dag_id,) = apply_rules(store, ROOT / "include" / "rules" / "expedite-vip-payments.yaml")
    vip = _rows(
        app_db,
        "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id "
        "WHERE o.status = 'pending' AND c.tier = 'vip' ORDER BY o.id LIMIT 1",
    )[0]["id"]
    with app_db.begin() as conn:
        conn.execute(sa.text("UPDATE orders SET status = 'paid' WHERE id = :i"), {"i": vip})
        conn.execute(sa.text("UPDATE orders SET note = 'called' WHERE id = :i"), {"i": vip})
    paid, noted = [str(r["id"]) for r in _rows(app_db, "SELECT id FROM rule_engine_outbox ORDER BY id")]
    capfd.readouterr()

    dagbag().dags[dag_id].test(run_conf={"event_ids": [paid, noted]})

    out = capfd.readouterr().out
    verdicts = _section(out, "condition verdicts of", "events matched")
    assert "condition verdicts of 2 of 2 events (row values hidden;" in verdicts
    entry = verdicts[verdicts.index(f"event {paid} updated (changed: ") :].splitlines()[:4]
    assert entry[0].split(" [airflow")[0].endswith(f", row [{vip}]: ✓ matched")
    assert [line.strip().split(" [airflow")[0] for line in entry[1:]] == [
        "✓ all",
        "✓ status changed_to 'paid'  'status' changed",
        "✓ customer__tier equals 'vip'",
    ]
    assert (
        f"event {noted} updated (changed: note): - ignored: the rule fires only when one of status "
        "changed; changed: note"
    ) in verdicts
    assert "1 of 2 events matched" in out and "[seen:" not in out


class _Run:
    """A DAG run's note, as ``set_run_note`` sees it: ``note`` reads and writes the note row
    ``dag_run_note``, and ``dag_run_note = None`` deletes it (as Airflow's ``DagRun`` does)."""

    def __init__(self, note: str | None) -> None:
        self.dag_run_note: str | None = note

    @property
    def note(self) -> str | None:
        return self.dag_run_note

    @note.setter
    def note(self, value: str) -> None:
        self.dag_run_note = value


def test_the_listener_keeps_a_persons_note_and_takes_an_outdated_one_of_its_own_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rule_engine import run_notes
    from rule_engine.operators import outcome

    from rule_compiler.runtime import verdicts

    assert (run_notes.RUN_NOTE_KEY, run_notes.NO_MATCH_PREFIX) == (
        outcome.RUN_NOTE_KEY,
        verdicts.NO_MATCH_PREFIX,
    )
    left: dict[str, str | None] = {"note": "no match: 0 of 3 events"}
    monkeypatch.setattr(run_notes, "note_of", lambda dag_run, session: left["note"])
    person = _Run("checked by Ada: the feed was down")
    assert run_notes.set_run_note(person, None) is None and person.note == "checked by Ada: the feed was down"
    empty = _Run(None)
    assert run_notes.set_run_note(empty, None) == "no match: 0 of 3 events" == empty.note
    left["note"] = None  # cleared and run again: this time it matched
    assert run_notes.set_run_note(empty, None) is None and empty.note is None
