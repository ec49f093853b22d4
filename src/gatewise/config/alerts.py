"""The ``webhooks:`` section: where budget alerts are POSTed, and how hard to try.

Alerts carry spend figures, so they go over TLS: plain ``http://`` is accepted
only for loopback receivers (tests, a local relay). The HMAC key is a secret
reference like every other credential; the URL may not embed credentials.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field

from gatewise.config.base import Name, Strict
from gatewise.config.secrets import WHOLE_REFERENCE

__all__ = ["GitLabIssueConfig", "WebhookConfig", "WebhookList", "is_loopback_host"]


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

    type: Literal["webhook"] = Field("webhook", description="A signed HTTP POST (the default).")
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


def _check_token_reference(value: str) -> str:
    if WHOLE_REFERENCE.match(value) is None:
        raise ValueError(
            "the GitLab token must be a reference such as ${env:GITLAB_TOKEN}, "
            "never a literal value"
        )
    return value


def _check_labels(value: list[str]) -> list[str]:
    for label in value:
        if "," in label or not label.strip():
            raise ValueError(f"label {label!r}: a GitLab label is non-empty and has no comma")
    return value


class GitLabIssueConfig(Strict):
    """Alerts as GitLab issues: one open issue per alert and period, later alerts as notes."""

    type: Literal["gitlab_issue"]
    name: Name = Field(description="Unique name; budgets refer to it.")
    url: WebhookURL = Field(
        description="The GitLab instance, e.g. https://gitlab.example.com (http:// only for "
        "loopback)."
    )
    project: str = Field(
        min_length=1,
        max_length=400,
        description="The project's numeric id or its path (group/project).",
    )
    token: Annotated[str, AfterValidator(_check_token_reference)] = Field(
        description="A token with the api scope, as a reference: ${env:GITLAB_TOKEN}.",
        json_schema_extra={"pattern": r"^\$\{(env|file):[^}]+\}$"},
    )
    labels: Annotated[list[str], AfterValidator(_check_labels)] = Field(
        default_factory=lambda: ["gatewise"], description="Labels of the issues it opens."
    )
    confidential: bool = Field(True, description="Open issues as confidential.")
    timeout_seconds: float = Field(10.0, gt=0, le=60, description="Per GitLab API call.")
    max_attempts: int = Field(
        5, ge=1, le=20, description="Attempts per API call before the alert is given up."
    )


def _default_type(value: Any) -> Any:
    """An entry without ``type`` is a signed webhook (as before gitlab_issue existed)."""
    if isinstance(value, dict) and "type" not in value:
        return {"type": "webhook", **value}
    return value


AlertTarget = Annotated[
    Annotated[WebhookConfig | GitLabIssueConfig, Field(discriminator="type")],
    BeforeValidator(_default_type),
]


def _unique_names(
    webhooks: list[WebhookConfig | GitLabIssueConfig],
) -> list[WebhookConfig | GitLabIssueConfig]:
    seen: set[str] = set()
    for hook in webhooks:
        if hook.name in seen:
            raise ValueError(f"webhook name {hook.name!r} is used twice")
        seen.add(hook.name)
    return webhooks


#: The section's type, with the unique-name rule: ``webhooks: WebhookList = []``.
WebhookList = Annotated[list[AlertTarget], AfterValidator(_unique_names)]
