"""A budget crossing a threshold opens a GitLab issue (in the fake GitLab); the next
threshold in the same period adds a note to it instead of a second issue."""

from __future__ import annotations

import time

import pytest

from gatewise.testing import run_in_thread
from gatewise.testing.fake_gitlab import FakeGitLab
from gatewise.testing.gateway import run_gateway_in_thread
from tests.identity_seed import one_key, with_store
from tests.rawhttp import request

TOKEN = "glpat-e2e-token-abcdefghij0123"


def test_budget_thresholds_open_then_note_one_gitlab_issue(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GW_TEST_GITLAB_TOKEN", TOKEN)
    store_url = f"sqlite+aiosqlite:///{tmp_path}/gatewise.db"
    key = with_store(store_url, one_key)
    with run_in_thread(FakeGitLab(token=TOKEN)) as gitlab:
        config = {
            "auth": {"mode": "keys"},
            "store": {"url": store_url},
            "providers": {"mock": {"type": "mock"}},
            "models": [{"name": "mock-gpt", "deployments": [{"provider": "mock", "model": "m"}]}],
            "webhooks": [
                {
                    "name": "ops-issues",
                    "type": "gitlab_issue",
                    "url": gitlab.root_url,
                    "project": "42",
                    "token": "${env:GW_TEST_GITLAB_TOKEN}",
                    "labels": ["gatewise", "budget"],
                }
            ],
            "budgets": [
                {
                    "name": "daily-tokens",
                    "per": "app",
                    "tokens": 200,
                    "period": "day",
                    "mode": "soft",
                    "alerts": [50, 100],
                    "webhook": "ops-issues",
                }
            ],
        }
        body = {
            "model": "mock-gpt",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 10,
        }
        with run_gateway_in_thread(config) as gateway:
            statuses = [
                request(
                    "POST",
                    gateway.url + "/v1/chat/completions",
                    body,
                    headers={"authorization": f"Bearer {key}"},
                ).status
                for _ in range(30)
            ]
            deadline = time.monotonic() + 5
            issues = gitlab.project_issues("42")
            while time.monotonic() < deadline and not (issues and issues[0].notes):
                time.sleep(0.05)
        # The gateway has stopped and handled every queued alert.
    assert statuses == [200] * 30
    assert len(issues) == 1, [i.title for i in issues]
    (issue,) = issues
    assert "Budget daily-tokens reached 50%" in issue.title
    assert "[gatewise-alert:daily-tokens:app:" in issue.title
    assert issue.labels == ["gatewise", "budget"]
    assert len(issue.notes) == 1 and "reached 100%" in issue.notes[0]
    assert {call.token for call in gitlab.calls} == {TOKEN}


def test_guardrail_blocks_over_the_threshold_open_a_gitlab_issue(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A security alert: three blocked calls in the window open one issue (and no
    budgets or limits are configured: the alert sender runs on its own)."""
    monkeypatch.setenv("GW_TEST_GITLAB_TOKEN", TOKEN)
    secret = "AKIAIOSFODNN7EXAMPLE"  # what was blocked: never in the issue
    with run_in_thread(FakeGitLab(token=TOKEN)) as gitlab:
        config = {
            "auth": {"mode": "open"},
            "providers": {"mock": {"type": "mock"}},
            "models": [{"name": "mock-gpt", "deployments": [{"provider": "mock", "model": "m"}]}],
            "webhooks": [
                {
                    "name": "security",
                    "type": "gitlab_issue",
                    "url": gitlab.root_url,
                    "project": "7",
                    "token": "${env:GW_TEST_GITLAB_TOKEN}",
                }
            ],
            "guardrails": {
                "default": "strict",
                "alerts": {"webhook": "security", "threshold": 3, "window_seconds": 3600},
            },
        }
        blocked = {"model": "mock-gpt", "messages": [{"role": "user", "content": secret}]}
        with run_gateway_in_thread(config) as gateway:
            url = gateway.url + "/v1/chat/completions"
            statuses = [request("POST", url, blocked).status for _ in range(4)]
            deadline = time.monotonic() + 5
            issues = gitlab.project_issues("7")
            while time.monotonic() < deadline and not issues:
                time.sleep(0.05)
                issues = gitlab.project_issues("7")
    assert statuses == [400] * 4
    assert len(issues) == 1, [i.title for i in issues]
    assert "guardrail" in issues[0].title.lower()
    assert secret not in repr(issues[0]) and not issues[0].notes  # the 4th: same window
