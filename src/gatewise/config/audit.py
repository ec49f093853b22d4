"""The audit trail: what else goes into it, and its export sinks for a SIEM
(the ``observability.audit`` section).

Admin changes, approvals and refused admin requests are always audited. This section adds
guardrail blocks and config loads, and sends every entry this worker writes (with its
``seq`` and chain ``hash``, never a secret) to syslog (RFC 5424) or an HTTP endpoint.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

from gatewise.config.base import Strict
from gatewise.config.providers import SecretRef

#: Syslog facilities by name (RFC 5424 section 6.2.1).
FACILITIES = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "authpriv": 10,
    "ftp": 11,
    "ntp": 12,
    "security": 13,
    "console": 14,
    "clock": 15,
    **{f"local{n}": 16 + n for n in range(8)},
}
Facility = Literal[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
    "authpriv", "ftp", "ntp", "security", "console", "clock",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
]  # fmt: skip
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not embed credentials: put them in headers, as secret references")
    if parts.fragment:
        raise ValueError("must not have a #fragment")
    return value


def _check_headers(value: dict[str, str]) -> dict[str, str]:
    for name in value:
        if not _HEADER_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid header name")
        if name.lower() in ("host", "content-length", "content-type", "transfer-encoding"):
            raise ValueError(f"{name!r} is set by the gateway")
    return value


class SyslogSink(Strict):
    """Each entry as one RFC 5424 message: UDP (one datagram each) or TCP (octet-counted)."""

    type: Literal["syslog"]
    host: str = Field(min_length=1, max_length=253, description="The syslog server.")
    port: int = Field(514, ge=1, le=65535)
    protocol: Literal["udp", "tcp"] = "udp"
    facility: Facility = Field("auth", description="RFC 5424 facility (severity: notice).")
    app_name: str = Field("gatewise", pattern=r"^[!-~]{1,48}$", description="APP-NAME field.")


class HttpSink(Strict):
    """Entries POSTed as a JSON array, up to ``batch_size`` per request."""

    type: Literal["http"]
    url: Annotated[str, AfterValidator(_check_http_url)]
    headers: Annotated[dict[str, SecretRef], AfterValidator(_check_headers)] = Field(
        default_factory=dict,
        description="Extra headers (e.g. Authorization), each a secret reference such as "
        "${env:SIEM_TOKEN}: literal values are rejected.",
    )
    batch_size: int = Field(100, ge=1, le=10_000, description="Entries per request.")
    timeout_seconds: float = Field(5.0, gt=0, le=120, description="Per request, all told.")


AuditSink = Annotated[SyslogSink | HttpSink, Field(discriminator="type")]


class AuditConfig(Strict):
    guardrail_blocks: bool = Field(
        True,
        description="A request a guardrail blocked becomes an entry (action `guardrail_block`: "
        "the guardrail, category, caller and request id; never the text).",
    )
    config_loads: bool = Field(
        True,
        description="Each config a worker starts with (`config_load`) or a reload rejects "
        "(`config_reject`) becomes an entry, with the config's SHA-256.",
    )
    blocks_per_second: float = Field(
        10.0, gt=0, le=10_000, description="Guardrail-block entries per worker, on average."
    )
    block_burst: int = Field(100, ge=1, le=100_000, description="... and at once.")
    sinks: list[AuditSink] = Field(
        default_factory=list, description="Where entries are also sent: `syslog` or `http`."
    )
    queue_size: int = Field(
        10_000, ge=10, le=1_000_000, description="Entries held per sink while it is down."
    )
    max_retries: int = Field(
        5, ge=0, le=100, description="Retries of a failed send (with backoff) before giving up."
    )
