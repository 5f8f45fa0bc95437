"""Sending email through an SMTP server named by an Airflow connection.

Connection fields: host, port, login/password (optional). Extra (JSON): ``from_email`` (the sender;
default the login, else ``automation@<host>``), ``ssl`` (implicit TLS; default when the port is 465),
``starttls`` (default when the port is 587), ``timeout`` (seconds, default 30).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

from rule_compiler.errors import PermanentActionError, RetryableActionError


class SmtpSender(BaseHook):
    """Delivers one message per call; SMTP 5xx answers are permanent, everything else is retried."""

    conn_name_attr = "conn_id"
    hook_name = "Rule engine SMTP"

    def __init__(self, conn_id: str) -> None:
        super().__init__()
        self.conn_id = conn_id

    @cached_property
    def _connection(self) -> Any:
        return self.get_connection(self.conn_id)

    @property
    def _extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = self._connection.extra_dejson
        return extra

    @property
    def sender(self) -> str:
        connection = self._connection
        login = connection.login if connection.login and "@" in connection.login else None
        return str(self._extra.get("from_email") or login or f"automation@{connection.host or 'localhost'}")

    @property
    def domain(self) -> str:
        """The domain for Message-IDs: the sender's."""
        return self.sender.rsplit("@", 1)[-1].strip("> ")

    def send(self, message: EmailMessage) -> None:
        connection, extra = self._connection, self._extra
        port = int(connection.port or 25)
        use_ssl = bool(extra.get("ssl", port == 465))
        use_starttls = bool(extra.get("starttls", port == 587))
        timeout = float(extra.get("timeout", 30))
        try:
            client: smtplib.SMTP = (
                smtplib.SMTP_SSL(connection.host, port, timeout=timeout, context=ssl.create_default_context())
                if use_ssl
                else smtplib.SMTP(connection.host, port, timeout=timeout)
            )
            with client:
                if use_starttls:
                    client.starttls(context=ssl.create_default_context())
                if connection.login:
                    client.login(connection.login, connection.password or "")
                refused = client.send_message(message)
        except smtplib.SMTPResponseException as exc:
            error = f"SMTP server answered {exc.smtp_code}: {_text(exc.smtp_error)}"
            raise (PermanentActionError if exc.smtp_code >= 500 else RetryableActionError)(error) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentActionError(f"every recipient was refused ({len(exc.recipients)})") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise RetryableActionError(f"could not deliver through {self.conn_id}: {exc}") from None
        if refused:
            raise PermanentActionError(f"{len(refused)} of the recipients were refused by the server")


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
