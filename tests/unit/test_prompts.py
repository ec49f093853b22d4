"""Prompts as endpoints, below the HTTP layer: files, templates, schemas, rollout, repair."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from gatewise.config.loader import ConfigError
from gatewise.config.prompts import PromptConfig, PromptsConfig, PromptTestCase
from gatewise.core.errors import InvalidRequestError
from gatewise.core.types import ChatRequest, ChatResponse, NativeBody
from gatewise.corridor.chain import Corridor
from gatewise.prompts.files import load_folder, parse_prompt_text
from gatewise.prompts.outcomes import PromptOutcomes
from gatewise.prompts.registry import build_registry, compile_version
from gatewise.prompts.rollout import Rollout
from gatewise.prompts.run import REPAIRED, OutputSchemaError, answer, chat_request, note
from gatewise.prompts.schema import SchemaCheck, compile_fast
from gatewise.prompts.template import TemplateRefusedError, compile_template, render
from gatewise.prompts.testing import CaseResult, judge, junit_xml
from tests.corridor_doubles import catalog, context, reply

SENTIMENT: dict[str, Any] = {
    "name": "sentiment",
    "model": "m",
    "system": "You are terse.",
    "template": "Classify: {{ message }}",
    "parameters": {"temperature": 0, "max_tokens": 5},
    "input_schema": {
        "type": "object",
        "required": ["message"],
        "additionalProperties": False,
        "properties": {
            "message": {"type": "string", "maxLength": 20},
            "tags": {"type": "array", "items": {"type": "object", "required": ["name"]}},
        },
    },
    "output_schema": {
        "type": "object",
        "required": ["sentiment"],
        "properties": {"sentiment": {"enum": ["positive", "negative", "neutral"]}},
    },
}


def version(**changes: Any) -> Any:
    return compile_version(PromptConfig.model_validate({**SENTIMENT, **changes}), "/api/x")


# --- templates ----------------------------------------------------------------------------


def test_a_template_renders_its_variables() -> None:
    assert render(compile_template("Hi {{ name | upper }}!"), {"name": "ann"}, "p") == "Hi ANN!"


def test_a_missing_variable_is_the_callers_400_not_an_empty_string() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        render(compile_template("Hi {{ name }}"), {}, "p")
    assert (caught.value.code, caught.value.param) == ("missing_input", "name")


@pytest.mark.parametrize(
    "source",
    [
        "{{ message.__class__.__mro__ }}",
        "{{ ''.__class__.__base__.__subclasses__() }}",
        "{{ message.upper.__globals__ }}",
        "{% set items = [] %}{{ items.append(1) }}",
        "{{ cycler.__init__.__globals__.os }}",
    ],
)
def test_sandbox_escapes_are_refused(source: str) -> None:
    with pytest.raises(TemplateRefusedError) as caught:
        render(compile_template(source), {"message": "x"}, "evil")
    assert caught.value.status == 500
    assert "object" not in caught.value.message  # nothing of Python's internals leaks
    assert "__" not in caught.value.message


def test_a_template_syntax_error_names_the_line() -> None:
    with pytest.raises(ValueError, match="template line 2"):
        PromptConfig.model_validate({**SENTIMENT, "template": "ok\n{{ broken "})


# --- input and output schemas -------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "field", "words"),
    [
        ({}, "message", "is required"),
        ({"message": 3}, "message", "must be of type string"),
        ({"message": "x" * 21}, "message", "at most 20 characters"),
        ({"message": "ok", "extra": 1}, "extra", "not an allowed field"),
        ({"message": "ok", "tags": [{"name": "a"}, {}]}, "tags[1].name", "is required"),
    ],
)
def test_bad_input_is_a_400_that_names_the_field(
    variables: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        chat_request(version(), variables)
    assert caught.value.param == field
    assert words in caught.value.message
    assert "xxxxx" not in caught.value.message  # the value itself is not echoed


def test_the_rendered_request_carries_the_prompt_parameters_and_output_format() -> None:
    request = chat_request(version(), {"message": "great"}, stream=True)
    assert [m.role for m in request.messages] == ["system", "user"]
    assert request.messages[1].content == "Classify: great"
    assert (request.model, request.temperature, request.max_tokens) == ("m", 0, 5)
    assert request.stream is True
    assert request.response_format is not None
    assert request.response_format["json_schema"]["schema"] == SENTIMENT["output_schema"]


def test_a_rendered_prompt_over_the_limit_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="longer than"):
        chat_request(version(limits={"max_input_chars": 30}), {"message": "long enough text"})


def test_stream_is_not_an_input_variable() -> None:
    schema = {"type": "object", "properties": {"stream": {"type": "string"}}}
    with pytest.raises(ValueError, match="reserved"):
        PromptConfig.model_validate({**SENTIMENT, "input_schema": schema})


def test_an_invalid_json_schema_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        PromptConfig.model_validate({**SENTIMENT, "output_schema": {"type": "nope"}})


# --- rollout ------------------------------------------------------------------------------


def test_weights_split_calls_in_proportion() -> None:
    rollout = Rollout(["v1", "v2", "v3"], [90, 10, 0], rng=random.Random(7))
    counts = Counter(rollout.pick() for _ in range(20_000))
    assert counts["v3"] == 0
    assert 0.085 < counts["v2"] / 20_000 < 0.115


def test_sticky_rollout_gives_one_key_one_version() -> None:
    rollout = Rollout(["v1", "v2"], [50, 50], sticky=True)
    picks = {key: rollout.pick(key) for key in (f"key{i}" for i in range(200))}
    assert all(rollout.pick(key) == picked for key, picked in picks.items())
    assert set(picks.values()) == {"v1", "v2"}


def test_a_rollout_without_weight_is_refused() -> None:
    with pytest.raises(ValueError):
        Rollout(["v1"], [0])


def _registry(*prompts: dict[str, Any]) -> Any:
    section = PromptsConfig.model_validate({"inline": [{**SENTIMENT, **p} for p in prompts]})
    return build_registry(section, None, ["m"], ["standard"])


def test_without_weights_the_newest_current_version_serves() -> None:
    family = _registry({"version": 1}, {"version": 2}, {"version": 3, "deprecated": True}).families[
        "sentiment"
    ]
    assert [v.version for v in family.rollout.versions] == [2]
    assert family.versions[3].headers["deprecation"] == "true"


def test_a_canary_splits_between_weighted_versions() -> None:
    family = _registry({"version": 1, "weight": 95}, {"version": 2, "weight": 5}).families[
        "sentiment"
    ]
    assert [v.version for v in family.rollout.versions] == [1, 2]


def test_deprecation_and_sunset_headers() -> None:
    served = version(deprecated="2026-01-01", sunset="2026-06-30")
    assert served.headers["deprecation"] == "@1767225600"
    assert served.headers["sunset"] == "Tue, 30 Jun 2026 00:00:00 GMT"
    assert served.headers["x-gatewise-prompt-version"] == "1"


def test_registry_errors_are_reported_together() -> None:
    with pytest.raises(ConfigError) as caught:
        _registry(
            {"version": 1, "model": "nope"},
            {"version": 1, "guardrail_profile": "missing"},
        )
    text = str(caught.value)
    assert "prompts.inline[0]: model: unknown model 'nope'" in text
    assert "prompts.inline[1]: guardrail_profile: unknown profile 'missing'" in text
    assert "has two versions 1" in text


def test_two_prompts_at_one_path_are_refused() -> None:
    with pytest.raises(ConfigError, match="is served by"):
        _registry({"path": "/api/same"}, {"name": "other", "path": "/api/same"})


# --- files --------------------------------------------------------------------------------


def test_a_folder_of_prompt_files_loads_with_file_and_line_errors(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text("name: good\nmodel: m\ntemplate: 'Hi {{ who }}'\n")
    (tmp_path / "bad.yaml").write_text(
        "name: bad\nmodel: m\ntemplate: hi\nversion: two\ntemplat: oops\n"
    )
    (tmp_path / "notes.txt").write_text("not a prompt")
    with pytest.raises(ConfigError) as caught:
        load_folder(tmp_path)
    lines = str(caught.value).splitlines()
    assert f"{tmp_path / 'bad.yaml'}:4:1: version:" in lines[0]
    assert "bad.yaml:5:1: templat: unknown field 'templat'; did you mean 'template'?" in lines[1]
    (tmp_path / "bad.yaml").unlink()
    [(prompt, where)] = load_folder(tmp_path)
    assert (prompt.name, where) == ("good", str(tmp_path / "good.yaml"))


def test_a_literal_secret_in_a_prompt_file_is_refused() -> None:
    text = "name: leak\nmodel: m\ntemplate: 'key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789'\n"
    with pytest.raises(ConfigError, match="looks like"):
        parse_prompt_text(text, "leak.yaml")


# --- the repair retry -----------------------------------------------------------------------


class Recording:
    """A provider that answers each call with the next text and keeps the requests."""

    kind = "recording"

    def __init__(self, *texts: str) -> None:
        self.name = "rec"
        self.texts = list(texts)
        self.requests: list[ChatRequest] = []

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def chat(
        self, request: ChatRequest, model: str, native: NativeBody | None = None
    ) -> ChatResponse:
        self.requests.append(request)
        return reply(self.texts.pop(0))


async def test_a_bad_answer_gets_one_repair_with_the_validation_error() -> None:
    provider = Recording('{"sentiment": "great"}', '{"sentiment": "positive"}')
    corridor = Corridor(catalog(provider))  # type: ignore[arg-type]
    ctx = context()
    served = version()
    request = chat_request(served, {"message": "I love it"})
    _text, document = await answer(corridor, ctx, None, served, request)
    assert document == {"sentiment": "positive"}
    assert len(provider.requests) == 2
    repair = provider.requests[1].messages
    assert repair[-2].content == '{"sentiment": "great"}'
    assert "'sentiment' must be one of" in str(repair[-1].content)
    assert REPAIRED in ctx.decisions
    assert ctx.usage is not None and ctx.usage.total_tokens == 30  # both calls counted


async def test_a_second_bad_answer_is_a_502_naming_the_problem() -> None:
    provider = Recording("not json", '{"mood": 1}')
    corridor = Corridor(catalog(provider))  # type: ignore[arg-type]
    served = version()
    with pytest.raises(OutputSchemaError) as caught:
        await answer(corridor, context(), None, served, chat_request(served, {"message": "x"}))
    assert caught.value.status == 502
    assert "'sentiment' is required" in caught.value.message


async def test_a_good_answer_makes_one_call() -> None:
    provider = Recording('{"sentiment": "neutral"}')
    corridor = Corridor(catalog(provider))  # type: ignore[arg-type]
    served = version()
    _text, document = await answer(
        corridor, context(), None, served, chat_request(served, {"message": "x"})
    )
    assert document == {"sentiment": "neutral"} and len(provider.requests) == 1


# --- outcomes and prompt tests ----------------------------------------------------------------


def test_outcomes_count_per_version() -> None:
    outcomes = PromptOutcomes()
    served = version()
    for status, error_type in ((200, None), (400, "guardrail_violation"), (502, "upstream_error")):
        ctx = context()
        note(ctx, served)
        ctx.status, ctx.error_type, ctx.cost_micros = status, error_type, 10
        outcomes.finished(ctx)
    outcomes.finished(context())  # not a prompt call
    report = outcomes.of("sentiment", 1).report()
    assert (report["requests"], report["success"], report["guardrail_blocks"]) == (3, 1, 1)
    assert (report["errors"], report["cost_usd"]) == (1, 0.00003)


def test_judging_a_case() -> None:
    case = PromptTestCase.model_validate(
        {
            "name": "c",
            "expect": {
                "contains": ["pos"],
                "regex": "^\\{",
                "json_schema": {"required": ["sentiment"]},
                "max_tokens": 3,
                "max_latency_ms": 10,
            },
        }
    )
    assert judge(case, '{"sentiment": "pos"}', {"sentiment": "pos"}, 3, 5) == []
    failures = judge(case, "neg", None, 9, 50)
    assert failures == [
        "does not contain 'pos'",
        "does not match the regex '^\\\\{'",
        "is not JSON",
        "took 9 completion tokens (at most 3)",
        "took 50 ms (at most 10)",
    ]


def test_the_junit_report_names_failed_cases() -> None:
    results = [CaseResult("p", 2, "ok"), CaseResult("p", 2, "bad", ["is not JSON"])]
    xml = junit_xml(results).decode()
    assert 'tests="2" failures="1"' in xml
    assert '<testcase classname="prompts.p.v2" name="bad"' in xml
    assert 'message="is not JSON"' in xml


# --- the fast schema check agrees with jsonschema -------------------------------------------

FLAT = {
    "type": "object",
    "required": ["message"],
    "additionalProperties": False,
    "properties": {
        "message": {"type": "string", "minLength": 1, "maxLength": 5},
        "mood": {"enum": ["up", "down"]},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "count": {"type": "integer"},
        "ok": {"type": "boolean"},
    },
}
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(-2, 2, allow_nan=False),
    st.text(max_size=7),
    st.sampled_from(["up", "down"]),
)
DOCUMENTS = st.dictionaries(
    st.sampled_from(["message", "mood", "score", "count", "ok", "other"]), VALUES
)


@settings(max_examples=400, deadline=None)
@given(DOCUMENTS)
def test_the_fast_check_agrees_with_jsonschema(document: dict[str, Any]) -> None:
    fast = compile_fast(FLAT)
    assert fast is not None
    full = Draft202012Validator(FLAT).is_valid(document)
    if fast(document):
        assert full  # never a yes where jsonschema says no
    assert SchemaCheck(FLAT).is_valid(document) == full


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": "array"}}},
        {"type": "object", "properties": {"a": {"type": "string", "pattern": "x"}}},
        {"type": "object", "additionalProperties": {"type": "string"}},
        {"type": "object", "properties": {"a": {"enum": [1, "x"]}}},
        {"type": "array"},
    ],
)
def test_other_shapes_are_left_to_jsonschema(schema: dict[str, Any]) -> None:
    assert compile_fast(schema) is None


def test_a_limit_naming_an_unknown_prompt_is_a_config_error(tmp_path: Path) -> None:
    from gatewise.config.loader import ConfigError
    from gatewise.config.models import Config
    from gatewise.prompts.registry import check_prompts

    config = Config.model_validate(
        {
            "providers": {"mock": {"type": "mock"}},
            "models": [{"name": "m", "deployments": [{"provider": "mock", "model": "m"}]}],
            "limits": [{"per": "key", "requests_per_minute": 5, "prompts": ["nope"]}],
        }
    )
    with pytest.raises(ConfigError) as refused:
        check_prompts(config, tmp_path, "gw.yaml")
    assert "gw.yaml" in str(refused.value)
    assert "limits[0].prompts[0]" in str(refused.value)
    assert "unknown prompt 'nope'" in str(refused.value)
