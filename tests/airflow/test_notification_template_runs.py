"""A real `dag.test()` of the example rule that emails VIP account managers with the stored
notification template vip-order, received by a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from rule_compiler.catalog import Catalog
from rule_compiler.loading import read_definition_file
from rule_compiler.registration import compile_document, register
from rule_compiler.store import RuleStore
from tests.airflow.conftest import dagbag
from tests.airflow.test_notification_runs import Inbox, smtp_inbox  # noqa: F401
from tests.conftest import ROOT

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]


def test_template_email_arrives(store: RuleStore, app_db: sa.Engine, smtp_inbox: Inbox) -> None:  # noqa: F811
    catalog = Catalog.model_validate(store.get_catalog("acme"))
    template = compile_document(read_definition_file(ROOT / "include/templates/vip-order.yaml"), None)
    register(store, template, actor="t")
    rule = compile_document(
        read_definition_file(ROOT / "include/rules-using-templates/tell-vip-account-managers.yaml"),
        catalog,
        notification_templates={"vip-order": template.definition},  # type: ignore[dict-item]
    )
    register(store, rule, actor="t")
    matching = (
        "SELECT o.id, c.name, c.account_manager_email AS am, o.total FROM orders o JOIN customers c "
        "ON c.id = o.customer_id WHERE o.status = 'paid' AND o.total >= 1000 AND c.tier = 'vip' "
        "AND c.account_manager_email IS NOT NULL"
    )
    with app_db.connect() as conn:
        expected = {row.id: row for row in conn.execute(sa.text(matching))}
    from airflow.utils.state import DagRunState

    dag_run = dagbag().dags["rule__acme__tell-vip-account-managers"].test()
    assert dag_run.state == DagRunState.SUCCESS
    got: dict[int, tuple[list[str], object, str]] = {}
    for rcpt, msg in smtp_inbox.messages:
        text = msg.get_body(("plain",)).get_content()
        got[int(str(msg["Subject"]).split()[2])] = (rcpt, msg, text)
    assert set(got) == set(expected) and expected
    for oid, row in expected.items():
        rcpt, msg, text = got[oid]
        assert rcpt == [row.am]
        assert str(msg["Subject"]).startswith(f"VIP order {oid} from {row.name}:")
        assert f"{row.name} (a VIP customer) has order {oid}, status" in text
        assert "Sent by rule acme/tell-vip-account-managers." in text
