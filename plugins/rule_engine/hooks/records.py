"""A SQLAlchemy engine for an application database named by an Airflow connection id."""

from __future__ import annotations

from functools import cached_property

import sqlalchemy as sa
from airflow.sdk import BaseHook

#: Engines by (connection id, connection URI), so the tasks of one process (and the two hooks of one
#: task) share a pool; a connection edited in Airflow has a new URI, hence a new engine.
_ENGINES: dict[tuple[str, str], sa.Engine] = {}


class RecordsHook(BaseHook):
    """Resolves ``conn_id`` through Airflow (any provider hook with ``get_sqlalchemy_engine``)."""

    conn_name_attr = "conn_id"
    hook_name = "Rule engine records"

    def __init__(self, conn_id: str) -> None:
        super().__init__()
        self.conn_id = conn_id

    @cached_property
    def engine(self) -> sa.Engine:
        connection = self.get_connection(self.conn_id)
        key = (self.conn_id, str(connection.get_uri()))
        if key in _ENGINES:
            return _ENGINES[key]
        hook = connection.get_hook()  # type: ignore[no-untyped-call]
        get_engine = getattr(hook, "get_sqlalchemy_engine", None)
        if get_engine is None:
            raise ValueError(f"connection '{self.conn_id}' ({connection.conn_type}) is not a SQL database")
        engine: sa.Engine = get_engine(engine_kwargs={"pool_pre_ping": True, "hide_parameters": True})
        _ENGINES[key] = engine
        return engine
