"""GitLab issue alerts against the fake GitLab API over real HTTP: one issue per alert and
period, a note for a repeat, a new issue for a new period, retries, and a wrong token logged
without the token."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from gatewise.alerts.gitlab import GitLabIssues, alert_marker
from gatewise.alerts.guardrail_blocks import GuardrailBlockAlerts
from gatewise.alerts.thresholds import budget_event
from gatewise.alerts.webhooks import WebhookSender
from gatewise.config.alerts import GitLabIssueConfig
from gatewise.core.context import GuardrailVerdict, RequestContext
from gatewise.testing.fake_gitlab import FakeGitLab

TOKEN = "glpat-integration-token-0123456789"


def target(url: str, **extra: Any) -> GitLabIssueConfig:
    fields: dict[str, Any] = {
        "type": "gitlab_issue",
        "name": "ops-issues",
        "url": url,
        "project": "platform/ai-gateway",
        "token": "${env:GW_TEST_GITLAB_TOKEN}",
        "labels": ["gatewise", "budget"],
    }
    fields.update(extra)
    return GitLabIssueConfig.model_validate(fields)


def event(period: str, threshold: int) -> dict[str, Any]:
    return budget_event(
        budget="monthly",
        per="tenant",
        scope_id="acme",
        period_id=period,
        threshold=threshold,
        used=threshold * 1_000_000,
        limit=100_000_000,
        unit="usd",
    )


def resolve(reference: str) -> str:
    assert reference == "${env:GW_TEST_GITLAB_TOKEN}"
    return TOKEN


async def test_one_issue_per_alert_and_period_notes_for_repeats() -> None:
    async with FakeGitLab(token=TOKEN) as gitlab:
        sender = WebhookSender([target(gitlab.root_url)], resolve_secret=resolve)
        await sender.start()
        try:
            sender.send("ops-issues", event("2026-12", 50))
            assert await sender.join(5)
            sender.send("ops-issues", event("2026-12", 90))
            assert await sender.join(5)
            sender.send("ops-issues", event("2027-01", 50))
            assert await sender.join(5)
        finally:
            await sender.close()
    issues = gitlab.project_issues("platform/ai-gateway")
    assert len(issues) == 2
    december, january = issues
    assert "[gatewise-alert:monthly:tenant:acme:2026-12]" in december.title
    assert "reached 50%" in december.title
    assert december.labels == ["gatewise", "budget"]
    assert december.confidential is True
    assert len(december.notes) == 1 and "reached 90%" in december.notes[0]
    assert "[gatewise-alert:monthly:tenant:acme:2027-01]" in january.title
    assert january.notes == []
    assert all(call.token == TOKEN for call in gitlab.calls)
    assert [c.method for c in gitlab.calls] == ["GET", "POST", "GET", "POST", "GET", "POST"]
    assert gitlab.calls[0].query["state"] == "opened"


async def test_a_closed_issue_means_a_new_one() -> None:
    async with FakeGitLab(token=TOKEN) as gitlab:
        sender = GitLabIssues([target(gitlab.root_url)], resolve_secret=resolve)
        await sender.start()
        try:
            sender.send("ops-issues", event("2026-12", 50))
            assert await sender.join(5)
            gitlab.project_issues("platform/ai-gateway")[0].state = "closed"
            sender.send("ops-issues", event("2026-12", 90))
            assert await sender.join(5)
        finally:
            await sender.close()
    assert (sender.opened, sender.noted, sender.failed) == (2, 0, 0)


async def test_server_errors_are_retried() -> None:
    async with FakeGitLab(token=TOKEN) as gitlab:
        sender = GitLabIssues([target(gitlab.root_url)], resolve_secret=resolve, base_delay=0.01)
        await sender.start()
        try:
            gitlab.fail_next(2, 502)
            gitlab.fail_next(1, 429, retry_after="0")
            sender.send("ops-issues", event("2026-12", 80))
            assert await sender.join(5)
        finally:
            await sender.close()
    assert [c.answered for c in gitlab.calls] == [502, 502, 429, 200, 201]
    assert sender.opened == 1


async def test_a_wrong_token_is_logged_without_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeGitLab(token="glpat-the-right-one-0123456789") as gitlab:
        sender = GitLabIssues([target(gitlab.root_url)], resolve_secret=resolve)
        await sender.start()
        try:
            sender.send("ops-issues", event("2026-12", 50))
            assert await sender.join(5)
        finally:
            await sender.close()
    assert [c.answered for c in gitlab.calls] == [401]  # a 401 is final: no retry storm
    assert sender.failed == 1 and sender.opened == 0
    text = caplog.text
    assert "HTTP 401" in text
    assert "${env:GW_TEST_GITLAB_TOKEN}" in text
    assert TOKEN not in text


def test_marker_is_per_alert_and_period() -> None:
    assert alert_marker(event("2026-12", 50)) == alert_marker(event("2026-12", 90))
    assert alert_marker(event("2026-12", 50)) != alert_marker(event("2027-01", 50))
    assert alert_marker({"alert_key": "guardrail[x]:day"}) == "gatewise-alert:guardrailx:day"


def test_config_rejects_a_literal_token_and_commas_in_labels() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="must be a reference"):
        target("https://gitlab.example.com", token="glpat-literal")
    with pytest.raises(ValidationError, match="no comma"):
        target("https://gitlab.example.com", labels=["a,b"])
    with pytest.raises(ValidationError, match="https"):
        target("http://gitlab.example.com")


def blocked_request(number: int) -> RequestContext:
    ctx = RequestContext(f"req_{number}", method="POST", path="/v1/chat/completions")
    ctx.guardrails.append(
        GuardrailVerdict("prompt_injection", "jailbreak", 0.99, "block", "input", 0)
    )
    return ctx


async def test_guardrail_blocks_above_the_threshold_open_one_issue_per_window() -> None:
    now = [7200.0]
    async with FakeGitLab(token=TOKEN) as gitlab:
        sender = GitLabIssues([target(gitlab.root_url)], resolve_secret=resolve)
        await sender.start()
        alerts = GuardrailBlockAlerts(
            sender, "ops-issues", threshold=3, window_seconds=3600, clock=lambda: now[0]
        )
        try:
            alerts.finished(RequestContext("req_clean"))  # no verdicts: nothing counted
            flagged = RequestContext("req_flagged")
            flagged.guardrails.append(GuardrailVerdict("pii", "email", 0.9, "mask", "input"))
            alerts.finished(flagged)  # masked, not blocked
            for number in range(2):
                alerts.finished(blocked_request(number))
            assert await sender.join(5)
            assert gitlab.calls == []  # 2 blocks: below the threshold
            for number in range(2, 10):  # the 3rd block alerts, the rest of the hour does not
                alerts.finished(blocked_request(number))
            assert await sender.join(5)
            now[0] += 3600  # a new window
            for number in range(10, 13):
                alerts.finished(blocked_request(number))
            assert await sender.join(5)
        finally:
            await sender.close()
    issues = gitlab.project_issues("platform/ai-gateway")
    assert [i.title for i in issues] == [
        "3 requests blocked by guardrails since 1970-01-01T02:00Z (alert threshold 3 per 3600 s)"
        " [gatewise-alert:guardrail-blocks:1970-01-01T02:00Z]",
        "3 requests blocked by guardrails since 1970-01-01T03:00Z (alert threshold 3 per 3600 s)"
        " [gatewise-alert:guardrail-blocks:1970-01-01T03:00Z]",
    ]
    assert "prompt_injection/jailbreak" in issues[0].description
    assert all(i.notes == [] for i in issues)
