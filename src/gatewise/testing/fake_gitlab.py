"""``FakeGitLab``: a loopback GitLab REST API with just what alerts use.

Why: GitLab issue alerts must be tested against real HTTP that checks the token
and keeps state, so "a second alert in the same period adds a note" is a fact
about the issues the fake holds, not about mocks. It implements, under
``/api/v4/projects/:id`` (numeric id or URL-encoded path):

- ``GET .../issues`` with ``state``, ``search`` (substring of title, or of
  description unless ``in=title``) and ``labels`` (all must match);
- ``POST .../issues`` (``title``, ``description``, ``labels``, ``confidential``);
- ``POST .../issues/:iid/notes`` (``body``);

each behind a ``PRIVATE-TOKEN`` check (401 ``{"message": "401 Unauthorized"}``,
as GitLab answers). Every request is recorded; ``fail_next`` scripts 5xx/429.
Run it in the test's loop (``async with``) or with ``run_in_thread``.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson

from gatewise.testing.httpserver import Request, Response
from gatewise.testing.loopback import LoopbackServer

__all__ = ["FakeGitLab", "FakeIssue", "GitLabCall"]

_ROUTE = re.compile(r"^/api/v4/projects/(?P<project>.+?)/issues(?:/(?P<iid>\d+)/notes)?/?$")


@dataclass(slots=True)
class FakeIssue:
    iid: int
    title: str
    description: str
    labels: list[str]
    confidential: bool
    state: str = "opened"
    notes: list[str] = field(default_factory=list)

    def as_json(self, project: str) -> dict[str, Any]:
        return {
            "id": 1000 + self.iid,
            "iid": self.iid,
            "project_id": project,
            "title": self.title,
            "description": self.description,
            "labels": self.labels,
            "confidential": self.confidential,
            "state": self.state,
            "user_notes_count": len(self.notes),
        }


@dataclass(frozen=True, slots=True)
class GitLabCall:
    """One request as received: method, path (decoded), query, token header, JSON body."""

    method: str
    path: str
    query: dict[str, str]
    token: str | None
    body: Any
    answered: int


class FakeGitLab(LoopbackServer):
    """Projects keyed as the client names them (id or path); issues kept per project."""

    server_name = "the fake GitLab"

    def __init__(self, token: str = "glpat-fake-token-for-tests") -> None:
        super().__init__()
        self.token = token
        self.issues: dict[str, list[FakeIssue]] = {}
        self.calls: list[GitLabCall] = []
        self._failures: deque[tuple[int, str | None]] = deque()

    def fail_next(self, count: int, status: int = 500, *, retry_after: str | None = None) -> None:
        """Answer the next ``count`` requests with ``status``."""
        self._failures.extend([(status, retry_after)] * count)

    def project_issues(self, project: str) -> list[FakeIssue]:
        return self.issues.setdefault(project, [])

    async def handle(self, request: Request, response: Response) -> None:
        status, payload, headers = self._answer(request)
        try:
            body = orjson.loads(request.body) if request.body else None
        except orjson.JSONDecodeError:
            body = request.body
        self.calls.append(
            GitLabCall(
                request.method,
                request.path,
                dict(request.query),
                request.headers.get("private-token"),
                body,
                status,
            )
        )
        await asyncio.sleep(0)
        response.send(status, [("content-type", "application/json"), *headers], payload)

    def _answer(self, request: Request) -> tuple[int, bytes, list[tuple[str, str]]]:
        if self._failures:
            status, retry_after = self._failures.popleft()
            extra = [("retry-after", retry_after)] if retry_after is not None else []
            return status, b'{"message": "scripted failure"}', extra
        if request.headers.get("private-token") != self.token:
            return 401, b'{"message": "401 Unauthorized"}', []
        match = _ROUTE.match(request.path)
        if match is None:
            return 404, b'{"error": "404 Not Found"}', []
        project = match["project"]
        issues = self.project_issues(project)
        try:
            data = orjson.loads(request.body) if request.body else {}
        except orjson.JSONDecodeError:
            return 400, b'{"error": "body is not JSON"}', []
        if match["iid"] is not None:
            if request.method != "POST":
                return 405, b'{"error": "405 Method Not Allowed"}', []
            issue = next((i for i in issues if i.iid == int(match["iid"])), None)
            if issue is None:
                return 404, b'{"message": "404 Issue Not Found"}', []
            if not isinstance(data, dict) or not data.get("body"):
                return 400, b'{"error": "body is missing"}', []
            issue.notes.append(str(data["body"]))
            return 201, orjson.dumps({"id": len(issue.notes), "body": data["body"]}), []
        if request.method == "GET":
            found = [i.as_json(project) for i in issues if _matches(i, request.query)]
            return 200, orjson.dumps(found), []
        if request.method == "POST":
            if not isinstance(data, dict) or not data.get("title"):
                return 400, b'{"error": "title is missing"}', []
            labels = [x for x in str(data.get("labels") or "").split(",") if x]
            issue = FakeIssue(
                len(issues) + 1,
                str(data["title"]),
                str(data.get("description") or ""),
                labels,
                bool(data.get("confidential", False)),
            )
            issues.append(issue)
            return 201, orjson.dumps(issue.as_json(project)), []
        return 405, b'{"error": "405 Method Not Allowed"}', []


def _matches(issue: FakeIssue, query: dict[str, str]) -> bool:
    state = query.get("state", "all")
    if state != "all" and issue.state != state:
        return False
    wanted = [x for x in query.get("labels", "").split(",") if x]
    if any(label not in issue.labels for label in wanted):
        return False
    search = query.get("search")
    if search:
        fields = query.get("in", "title,description").split(",")
        text = " ".join(
            value
            for name, value in (("title", issue.title), ("description", issue.description))
            if name in fields
        )
        if search.lower() not in text.lower():
            return False
    return True
