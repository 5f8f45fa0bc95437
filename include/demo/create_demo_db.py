#!/usr/bin/env python3
"""Create the demo application database: ``customers`` and ``orders`` with deterministic seed data.

The example rules in ``include/rules/`` watch and change this database through the Airflow
connection ``app_db`` (``scripts/airflow-env.sh`` points it at ``$AIRFLOW_HOME/demo_app.db``).

    python include/demo/create_demo_db.py                      # SQLite file $AIRFLOW_HOME/demo_app.db
    python include/demo/create_demo_db.py --url postgresql+psycopg2://postgres@127.0.0.1:5432/demo
    python include/demo/create_demo_db.py --conn-id app_db     # wherever Airflow's app_db points
    python include/demo/create_demo_db.py --if-missing         # keep existing tables and data

Running it again drops both tables (and with them any row triggers installed on them) and
recreates them with the same seed data. Timestamps are offsets from ``--now`` (default: the
current UTC minute), so "pending for more than 3 days" stays true whenever the demo is loaded;
with the same ``--now`` the data is identical row for row. SQLAlchemy Core only: SQLite and
Postgres alike.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO_ROOT = Path(__file__).resolve().parents[2]

metadata = sa.MetaData()

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("email", sa.Text),
    sa.Column("tier", sa.Text),
    sa.Column("region", sa.Text),
    sa.Column("account_manager_email", sa.Text),
    sa.Column("credit_limit", sa.Numeric(12, 2)),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp()),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), index=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("total", sa.Numeric(12, 2)),
    sa.Column("priority", sa.Text),
    sa.Column("note", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp()),
    sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp()),
    sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
)

SETVAL_STATEMENTS = (
    "SELECT setval(pg_get_serial_sequence('customers', 'id'), (SELECT MAX(id) FROM customers))",
    "SELECT setval(pg_get_serial_sequence('orders', 'id'), (SELECT MAX(id) FROM orders))",
)

# id, name, email, tier, region, account manager, credit limit, created (days ago)
CUSTOMERS: list[tuple[int, str, str, str, str, str | None, str, int]] = [
    (1, "Northwind Traders", "orders@northwind.example", "vip", "emea", "maria@acme.example", "50000", 900),
    (2, "Contoso Ltd", "buying@contoso.example", "vip", "amer", "sam@acme.example", "75000", 720),
    (3, "Fabrikam Inc", "ap@fabrikam.example", "gold", "amer", "sam@acme.example", "20000", 610),
    (4, "Tailspin Toys", "hello@tailspin.example", "standard", "emea", None, "5000", 400),
    (5, "Wide World Importers", "purchasing@wwi.example", "vip", "apac", "kenji@acme.example", "60000", 380),
    (
        6,
        "Adventure Works",
        "shop@adventure-works.example",
        "gold",
        "emea",
        "maria@acme.example",
        "15000",
        300,
    ),
    (7, "Litware Labs", "billing@litware.example", "standard", "apac", "kenji@acme.example", "3000", 200),
    (8, "Proseware Co", "team@proseware.example", "standard", "amer", None, "2500", 120),
    (9, "Coho Winery", "cellar@cohowinery.example", "gold", "emea", "maria@acme.example", "12000", 45),
    (
        10,
        "Alpine Ski House",
        "rentals@alpineski.example",
        "standard",
        "emea",
        "maria@acme.example",
        "4000",
        3,
    ),
]

# customer id (None: guest order), status, total, priority, note, created (hours ago),
# last updated (hours ago), deleted
ORDERS: list[tuple[int | None, str, str | None, str | None, str | None, int, int, bool]] = [
    (1, "paid", "1250.00", "normal", None, 2, 1, False),
    (1, "pending", "4800.00", "normal", "Quarterly restock", 6, 6, False),
    (1, "paid", "320.50", "low", None, 30, 29, False),
    (1, "cancelled", "980.00", "normal", "Customer changed supplier for this line", 200, 190, False),
    (2, "pending", "15200.00", "high", "Rush: trade show", 1, 1, False),
    (2, "paid", "2200.00", "normal", None, 50, 49, False),
    (2, "payment_failed", "7300.00", "normal", "Card declined twice", 80, 70, False),
    (2, "paid", "89.99", "low", None, 400, 399, False),
    (3, "pending", "450.00", "normal", None, 100, 100, False),
    (3, "paid", "1999.00", "normal", None, 10, 9, False),
    (3, "void", "0.00", None, "Duplicate of a previous order", 150, 149, False),
    (3, "pending", "3100.00", "normal", "Awaiting PO number", 240, 230, False),
    (4, "pending", "75.00", "low", None, 3, 3, False),
    (4, "paid", "640.00", "normal", None, 20, 19, False),
    (4, "payment_failed", "1200.00", "normal", None, 5, 4, False),
    (4, "cancelled", "30.00", "low", "Ordered by mistake", 300, 299, True),
    (5, "paid", "25000.00", "high", "Annual contract", 12, 11, False),
    (5, "pending", "999.99", "normal", None, 90, 90, False),
    (5, "pending", "1000.00", "normal", "Boundary total", 4, 4, False),
    (5, "paid", "540.00", "normal", None, 700, 699, False),
    (6, "pending", "2750.00", "normal", None, 8, 8, False),
    (6, "paid", "180.25", "low", None, 60, 59, False),
    (6, "void", "410.00", "normal", "Test order", 500, 499, True),
    (6, "payment_failed", "860.00", None, None, 26, 25, False),
    (7, "pending", "1500.00", "normal", None, 170, 170, False),
    (7, "paid", "59.00", "low", None, 14, 13, False),
    (7, "cancelled", "220.00", "normal", None, 36, 30, False),
    (7, "pending", None, "normal", "Total not yet known", 7, 7, False),
    (8, "paid", "3300.00", "normal", None, 16, 15, False),
    (8, "pending", "120.00", "low", None, 480, 480, False),
    (8, "payment_failed", "95.00", "low", "Expired card", 2, 2, False),
    (8, "void", "1450.00", "normal", None, 900, 890, False),
    (9, "paid", "6100.00", "high", "Harvest season", 22, 21, False),
    (9, "pending", "830.00", "normal", None, 75, 75, False),
    (9, "cancelled", "5600.00", "high", "Customer cancelled by phone", 130, 120, False),
    (9, "paid", "410.00", "normal", None, 1000, 999, False),
    (10, "pending", "2400.00", "normal", "First order", 1, 1, False),
    (10, "paid", "150.00", "low", None, 9, 8, False),
    (None, "pending", "45.00", "low", "Guest checkout", 5, 5, False),
    (None, "paid", "310.00", "normal", "Guest checkout", 44, 43, False),
]


def default_url() -> str:
    home = Path(os.environ.get("AIRFLOW_HOME") or REPO_ROOT / ".airflow")
    return f"sqlite:///{home / 'demo_app.db'}"


def engine_for_connection(conn_id: str) -> sa.Engine:
    """The engine of an Airflow connection (env var, secrets backend or metadata DB)."""
    from airflow.models.connection import Connection

    connection: Any = Connection.get_connection_from_secrets(conn_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "ProvidersManager.hooks is deprecated", from Airflow's own code
        hook: Any = connection.get_hook()
    engine: sa.Engine = hook.get_sqlalchemy_engine()
    return engine


def seed_rows(now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    customer_rows = [
        {
            "id": cid,
            "name": name,
            "email": email,
            "tier": tier,
            "region": region,
            "account_manager_email": manager,
            "credit_limit": Decimal(limit),
            "created_at": now - timedelta(days=days),
        }
        for cid, name, email, tier, region, manager, limit, days in CUSTOMERS
    ]
    order_rows = [
        {
            "id": oid,
            "customer_id": cid,
            "status": status,
            "total": None if total is None else Decimal(total),
            "priority": priority,
            "note": note,
            "created_at": now - timedelta(hours=created),
            "updated_at": now - timedelta(hours=updated),
            "deleted": deleted,
        }
        for oid, (cid, status, total, priority, note, created, updated, deleted) in enumerate(ORDERS, start=1)
    ]
    return customer_rows, order_rows


def create_demo_db(engine: sa.Engine, now: datetime, if_missing: bool = False) -> str:
    """Create (or reset) the demo tables and seed them; returns a one-paragraph summary."""
    where = engine.url.render_as_string(hide_password=True)
    existing = set(sa.inspect(engine).get_table_names())
    if if_missing and {"customers", "orders"} <= existing:
        with engine.connect() as conn:
            n_customers = conn.execute(sa.select(sa.func.count()).select_from(customers)).scalar_one()
            n_orders = conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar_one()
        return (
            f"demo app DB {where}: tables customers ({n_customers} rows) and orders ({n_orders} rows) "
            "already exist; left as they are (make demo-reset restores the seed data)"
        )

    customer_rows, order_rows = seed_rows(now)
    dropped = sorted({"customers", "orders"} & existing)
    with engine.begin() as conn:
        if dropped and conn.dialect.name == "postgresql":
            # CASCADE: foreign keys or views that other tools added to these tables go too.
            conn.execute(sa.text("DROP TABLE IF EXISTS orders, customers CASCADE"))
        else:
            metadata.drop_all(conn, checkfirst=True)
        metadata.create_all(conn)
        with warnings.catch_warnings():
            # SQLite stores NUMERIC as REAL: SQLAlchemy warns once about Decimal; the values are exact here.
            warnings.filterwarnings("ignore", message=".*Decimal objects natively.*")
            conn.execute(customers.insert(), customer_rows)
            conn.execute(orders.insert(), order_rows)
        if conn.dialect.name == "postgresql":
            # Explicit ids do not advance the SERIAL sequences: move them past the seed rows so that
            # rows inserted later (create_record actions, the app) get fresh ids.
            for statement in SETVAL_STATEMENTS:
                conn.execute(sa.text(statement))

    tiers = ", ".join(f"{n} {t}" for t, n in sorted(Counter(r["tier"] for r in customer_rows).items()))
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(Counter(r["status"] for r in order_rows).items()))
    action = f"dropped and recreated {', '.join(dropped)}" if dropped else "created customers, orders"
    return (
        f"demo app DB {where}: {action}; "
        f"inserted {len(customer_rows)} customers ({tiers}) and {len(order_rows)} orders ({statuses}, "
        f"{sum(row['deleted'] for row in order_rows)} soft-deleted); timestamps relative to {now.isoformat()}"
    )


def parse_now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC).replace(second=0, microsecond=0)
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--url", help="SQLAlchemy URL (default: sqlite:///$AIRFLOW_HOME/demo_app.db)")
    target.add_argument("--conn-id", help="use the database of this Airflow connection (imports Airflow)")
    parser.add_argument("--if-missing", action="store_true", help="keep existing tables and their data")
    parser.add_argument("--now", help="ISO timestamp the seed timestamps are relative to (default: now, UTC)")
    args = parser.parse_args(argv)

    if args.conn_id:
        engine = engine_for_connection(args.conn_id)
    else:
        url = args.url or default_url()
        if url.startswith("sqlite:///"):
            Path(sa.make_url(url).database or "").parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url)
    try:
        print(create_demo_db(engine, parse_now(args.now), if_missing=args.if_missing))
    except sa.exc.SQLAlchemyError as exc:
        where = engine.url.render_as_string(hide_password=True)
        print(f"create_demo_db: failed on {where}: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
