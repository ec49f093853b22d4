"""The ``webhooks:`` section: where budget alerts are POSTed, and how hard to try.

Alerts carry spend figures, so they go over TLS: plain ``http://`` is accepted
only for loopback receivers (tests, a local relay). The HMAC key is a secret
reference like every other credential; the URL may not embed credentials.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

from gatewise.config.base import Name, Strict
from gatewise.config.secrets import WHOLE_REFERENCE

__all__ = ["WebhookConfig", "WebhookList", "is_loopback_host"]


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback IP address (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_webhook_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http"):
        raise ValueError("the webhook URL must start with https://")
    if not parts.hostname:
        raise ValueError("the webhook URL has no host")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(
            "the webhook URL must use https:// (http:// is allowed only for loopback hosts)"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError("the webhook URL must not embed credentials; requests are signed")
    if parts.fragment:
        raise ValueError("the webhook URL must not have a #fragment")
    return value


WebhookURL = Annotated[str, AfterValidator(_check_webhook_url)]


def _check_secret_reference(value: str) -> str:
    if WHOLE_REFERENCE.match(value) is None:
        raise ValueError(
            "the webhook secret must be a reference such as ${env:GATEWISE_WEBHOOK_SECRET} "
            "or ${file:/run/secrets/webhook}, never a literal value"
        )
    return value


# The rule of ``config.providers.SecretRef``, with a message that speaks of webhooks.
WebhookSecret = Annotated[
    str,
    AfterValidator(_check_secret_reference),
    Field(json_schema_extra={"pattern": r"^\$\{(env|file):[^}]+\}$"}),
]


class WebhookConfig(Strict):
    """One receiver of signed alert events."""

    name: Name = Field(description="Unique name; budgets refer to it.")
    url: WebhookURL = Field(description="https:// endpoint (http:// only for loopback).")
    secret: WebhookSecret = Field(
        description="HMAC-SHA256 key for the x-gatewise-signature header, e.g. ${env:HOOK_KEY}."
    )
    timeout_seconds: float = Field(
        5.0, gt=0, le=60, description="Per attempt: connect, send and read the answer."
    )
    max_attempts: int = Field(
        6, ge=1, le=20, description="Attempts before the delivery is given up (and logged)."
    )


def _unique_names(webhooks: list[WebhookConfig]) -> list[WebhookConfig]:
    seen: set[str] = set()
    for hook in webhooks:
        if hook.name in seen:
            raise ValueError(f"webhook name {hook.name!r} is used twice")
        seen.add(hook.name)
    return webhooks


#: The section's type, with the unique-name rule: ``webhooks: WebhookList = []``.
WebhookList = Annotated[list[WebhookConfig], AfterValidator(_unique_names)]
