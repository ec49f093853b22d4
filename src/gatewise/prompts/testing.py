"""Prompt tests: each prompt file's test cases run against a model, judged, reported.

A case gives inputs and expectations (``contains``, ``not_contains``, ``regex``,
``json_schema``, ``equals``, ``max_tokens``, ``max_latency_ms``). The runner renders
and calls exactly as the endpoint does (``prompts.run``: input schema, template,
output schema and its repair), through a corridor of the config's catalog and
providers, without the gateway's callers and policies: what is tested is the prompt
and the model. ``--model`` sends every case to another configured model, or to the
built-in mock provider (``mock``) when the config has no model of that name.
The JUnit XML report names each case ``prompt vN: case``, so CI shows which failed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import orjson

from gatewise.config.models import Config, DeploymentConfig, ModelConfig
from gatewise.config.prompts import PromptTestCase
from gatewise.config.providers import MockProviderConfig
from gatewise.core.context import RequestContext, new_request_id
from gatewise.core.errors import GatewayError
from gatewise.corridor.chain import Corridor
from gatewise.prompts.registry import PromptVersion, build_registry, compile_version
from gatewise.prompts.run import answer, chat_request
from gatewise.prompts.schema import SchemaCheck

MOCK = "mock"
_MOCK_PROVIDER = "prompt-tests-mock"


@dataclass
class CaseResult:
    prompt: str
    version: int
    case: str
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    output: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def title(self) -> str:
        return f"{self.prompt} v{self.version}: {self.case}"


def with_model(config: Config, model: str | None) -> Config:
    """``config`` able to serve ``model``: the mock is added when asked for and absent."""
    if model is None or any(m.name == model for m in config.models):
        return config
    if model != MOCK:
        known = ", ".join(m.name for m in config.models) or "none"
        raise ValueError(f"--model: unknown model {model!r} (configured: {known}, or mock)")
    providers = {**config.providers, _MOCK_PROVIDER: MockProviderConfig(type="mock")}
    deployment = DeploymentConfig(provider=_MOCK_PROVIDER, model=MOCK)
    models = [*config.models, ModelConfig(name=MOCK, deployments=[deployment])]
    return config.model_copy(update={"providers": providers, "models": models})


async def run_tests(
    config: Config,
    config_dir: Path | None,
    *,
    model: str | None = None,
    only: Sequence[str] = (),
) -> list[CaseResult]:
    """Every test case of every prompt version (or of the prompts named in ``only``)."""
    from gatewise.runtime.prepare import prepare

    config = with_model(config, model)
    names = [m.name for m in config.models]
    registry = build_registry(config.prompts, config_dir, names, config.guardrails.all_profiles())
    prepared = prepare(config, config_dir)
    corridor = Corridor(prepared.catalog)
    for provider in prepared.providers.values():
        await provider.start()
    results: list[CaseResult] = []
    try:
        for version in registry.versions():
            if only and version.name not in only:
                continue
            if model is not None:
                changed = version.config.model_copy(update={"model": model})
                version = compile_version(changed, version.path.rsplit("/v", 1)[0])
            for case in version.config.tests:
                results.append(await run_case(corridor, version, case))
    finally:
        for provider in prepared.providers.values():
            await provider.close()
    return results


async def run_case(corridor: Corridor, version: PromptVersion, case: PromptTestCase) -> CaseResult:
    result = CaseResult(version.name, version.version, case.name)
    ctx = RequestContext(new_request_id(), "POST", version.path)
    started = time.perf_counter()
    try:
        request = chat_request(version, case.input)
        text, document = await answer(corridor, ctx, None, version, request)
    except GatewayError as error:
        result.seconds = time.perf_counter() - started
        result.failures.append(f"the call failed: {error.message} ({error.code or error.type})")
        return result
    result.seconds = time.perf_counter() - started
    result.output = text
    tokens = ctx.usage.completion_tokens if ctx.usage is not None else None
    result.failures = judge(case, text, document, tokens, result.seconds * 1000)
    return result


def judge(
    case: PromptTestCase, text: str, document: Any, tokens: int | None, latency_ms: float
) -> list[str]:
    """What the answer got wrong, one line each (empty: the case passed)."""
    expect = case.expect
    failures = [f"does not contain {word!r}" for word in expect.contains if word not in text]
    failures += [f"contains {word!r}" for word in expect.not_contains if word in text]
    if expect.regex is not None and re.search(expect.regex, text) is None:
        failures.append(f"does not match the regex {expect.regex!r}")
    if expect.json_schema is not None:
        try:
            parsed = orjson.loads(text) if document is None else document
        except orjson.JSONDecodeError:
            failures.append("is not JSON")
        else:
            problem = SchemaCheck(expect.json_schema).problem(parsed)
            if problem is not None:
                where = f"'{problem[0]}' " if problem[0] else ""
                failures.append(f"does not match the JSON Schema: {where}{problem[1]}")
    if expect.equals is not None:
        actual = document if document is not None else text
        if actual != expect.equals:
            failures.append(f"is not equal to {expect.equals!r}")
    if expect.max_tokens is not None and tokens is not None and tokens > expect.max_tokens:
        failures.append(f"took {tokens} completion tokens (at most {expect.max_tokens})")
    if expect.max_latency_ms is not None and latency_ms > expect.max_latency_ms:
        failures.append(f"took {latency_ms:.0f} ms (at most {expect.max_latency_ms:g})")
    return failures


def junit_xml(results: Sequence[CaseResult]) -> bytes:
    """A JUnit XML report (GitLab, GitHub and Jenkins read it)."""
    failed = sum(1 for r in results if not r.passed)
    total = sum(r.seconds for r in results)
    suites = ElementTree.Element("testsuites", tests=str(len(results)), failures=str(failed))
    suite = ElementTree.SubElement(
        suites,
        "testsuite",
        name="gatewise prompts",
        tests=str(len(results)),
        failures=str(failed),
        errors="0",
        time=f"{total:.3f}",
    )
    for result in results:
        case = ElementTree.SubElement(
            suite,
            "testcase",
            classname=f"prompts.{result.prompt}.v{result.version}",
            name=result.case,
            time=f"{result.seconds:.3f}",
        )
        if not result.passed:
            failure = ElementTree.SubElement(case, "failure", message="; ".join(result.failures))
            failure.text = f"answer: {result.output}"
    return bytes(ElementTree.tostring(suites, encoding="utf-8", xml_declaration=True))
