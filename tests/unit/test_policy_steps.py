"""The corridor's policy steps and observers on their own: access, admission (with a failover
to a dearer deployment), accounting, usage records, the access log; one prompt count per call."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gatewise.config.limits import BudgetConfig, LimitConfig
from gatewise.config.pricing import PriceConfig
from gatewise.core.errors import PermissionDeniedError, RateLimitError, UpstreamError
from gatewise.core.types import Usage
from gatewise.corridor import call as call_module
from gatewise.corridor.chain import Corridor
from gatewise.corridor.observer import Observers
from gatewise.identity.model_access import ModelAccess
from gatewise.identity.principal import Principal
from gatewise.identity.roles import Role
from gatewise.observe.access_log import AccessLog
from gatewise.observe.usage import UsageRecords
from gatewise.policies.access import AccessStep, ModelAccessPolicy
from gatewise.policies.accounting import AccountingStep
from gatewise.policies.admission import AdmissionStep
from gatewise.policies.limits import Planner
from gatewise.policies.traffic import TrafficControl
from gatewise.pricing.book import PriceBook
from gatewise.state.memory import MemoryCounterStore
from gatewise.store.usage import UsageRecord
from tests.corridor_doubles import ScriptedProvider, catalog, chat_request, context, principal

UTC = ZoneInfo("UTC")
NOON = datetime(2026, 11, 27, 12, tzinfo=UTC).timestamp()


def prices(**per_provider: tuple[str, str]) -> PriceBook:
    """A price book: provider name -> (input, output) USD per million tokens."""
    return PriceBook(
        {
            (name, f"{name}-model"): PriceConfig(
                input_per_million=rates[0], output_per_million=rates[1]
            )
            for name, rates in per_provider.items()
        }
    )


def traffic(
    *, limits: list[LimitConfig] | None = None, budgets: list[BudgetConfig] | None = None
) -> TrafficControl:
    store = MemoryCounterStore(lambda: NOON)
    planner = Planner(limits or [], budgets or [])
    return TrafficControl(store, planner, tenant_name=lambda _: "acme", clock=lambda: NOON)


async def test_access_refuses_models_outside_the_allow_list_or_without_approval() -> None:
    policy = ModelAccessPolicy(None, frozenset({"m"}))  # "m" needs an approved subscription
    corridor = Corridor(catalog(ScriptedProvider("p")), [AccessStep(policy)], access=policy)
    with pytest.raises(PermissionDeniedError) as refused:
        await corridor.chat(corridor.open(context(), principal(), chat_request()))
    assert refused.value.code == "subscription_required"
    assert corridor.models(principal()) == []  # a model you may not use is not listed

    open_policy = ModelAccessPolicy(None, frozenset())
    corridor = Corridor(catalog(ScriptedProvider("p")), [AccessStep(open_policy)])
    narrow = Principal("key", "key:k", Role.CONSUMER, "app", access=ModelAccess([["other-*"]]))
    with pytest.raises(PermissionDeniedError) as refused:
        await corridor.chat(corridor.open(context(), narrow, chat_request()))
    assert refused.value.code == "model_not_allowed"
    await corridor.chat(corridor.open(context(), principal(), chat_request()))
    # Without a caller (no authentication ran), access has nothing to check.
    await corridor.chat(corridor.open(context(), None, chat_request()))


async def test_a_failover_to_a_dearer_deployment_is_charged_before_it_is_called() -> None:
    """The 85-fold overshoot: a cheap deployment fails, the dear one must fit the budget."""
    book = prices(cheap=("0", "0"), dear=("100", "100"))  # $100 per million tokens
    budget = BudgetConfig(name="spend", per="app", usd="0.05", period="month", timezone="UTC")
    control = traffic(budgets=[budget])
    cheap = ScriptedProvider("cheap", [UpstreamError("busy", status=503)])
    dear = ScriptedProvider("dear")
    steps = [AdmissionStep(control, book), AccountingStep(book)]
    corridor = Corridor(catalog(cheap, dear), steps)
    ctx = context()
    request = chat_request()
    request.max_tokens = 1000  # about 1,010 tokens at $100 per million: ~$0.10 > $0.05
    with pytest.raises(RateLimitError) as refused:
        await corridor.chat(corridor.open(ctx, principal(), request))
    assert refused.value.code == "insufficient_quota"
    assert dear.calls == []  # refused before the dear deployment was called
    assert [a.provider for a in ctx.attempts] == ["cheap"]
    assert any(d.startswith("limited:budget:spend") for d in ctx.decisions)


async def test_a_failover_within_budget_is_charged_the_difference_and_settled_at_its_price() -> (
    None
):
    book = prices(cheap=("0", "0"), dear=("1", "2"))  # $1 / $2 per million tokens
    budget = BudgetConfig(name="spend", per="app", usd="1", period="month", timezone="UTC")
    control = traffic(budgets=[budget])
    cheap = ScriptedProvider("cheap", [UpstreamError("busy", status=503)])
    dear = ScriptedProvider("dear")  # reports 11 prompt and 4 completion tokens
    corridor = Corridor(catalog(cheap, dear), [AdmissionStep(control, book), AccountingStep(book)])
    ctx = context()
    request = chat_request()
    request.max_tokens = 100
    await corridor.chat(corridor.open(ctx, principal(), request))
    assert len(dear.calls) == 1
    assert ctx.cost_micros == 11 * 1 + 4 * 2  # priced at the deployment that answered
    # The budget's counter holds exactly the real cost once settled.
    outcome = control.store.admit_now([control._plan(principal(), "m", None).checks[0]], [0])  # type: ignore[attr-defined]
    assert outcome.states[0].used == 19


async def test_admission_refuses_and_settlement_frees_the_concurrency_slot() -> None:
    control = traffic(limits=[LimitConfig(per="key", concurrent=1)])
    book = prices(p=("1", "1"))
    provider = ScriptedProvider("p")
    corridor = Corridor(catalog(provider), [AdmissionStep(control, book), AccountingStep(book)])
    stream = await corridor.chat_stream(
        corridor.open(context(), principal(), chat_request(stream=True))
    )
    with pytest.raises(RateLimitError):  # the slot is held while the stream is open
        await corridor.chat(corridor.open(context(), principal(), chat_request()))
    await stream.aclose()
    await corridor.chat(corridor.open(context(), principal(), chat_request()))  # free again


async def test_accounting_prices_the_last_attempt_and_bills_nothing_for_a_failure() -> None:
    book = prices(p=("1", "2"))
    corridor = Corridor(catalog(ScriptedProvider("p")), [AccountingStep(book)])
    ctx = context()
    await corridor.chat(corridor.open(ctx, None, chat_request()))
    assert ctx.cost_micros == 11 * 1 + 4 * 2
    failing = Corridor(
        catalog(ScriptedProvider("p", [UpstreamError("bad", status=400)])), [AccountingStep(book)]
    )
    ctx = context()
    with pytest.raises(UpstreamError):
        await failing.chat(failing.open(ctx, None, chat_request()))
    assert ctx.cost_micros == 0
    unpriced = Corridor(catalog(ScriptedProvider("p")), [AccountingStep(PriceBook({}))])
    ctx = context()
    await unpriced.chat(unpriced.open(ctx, None, chat_request()))
    assert ctx.cost_micros is None  # "p-model" is in no catalog: unknown, not free


async def test_the_prompt_is_counted_once_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    counted: list[int] = []
    real = call_module.admission_count_request

    def counting(request: object) -> int:
        counted.append(1)
        return real(request)  # type: ignore[arg-type]

    monkeypatch.setattr(call_module, "admission_count_request", counting)
    control = traffic(limits=[LimitConfig(per="key", tokens_per_minute=100_000)])
    book = prices(p=("1", "1"))
    provider = ScriptedProvider("p", usage=None)  # no usage: the estimate needs the count too
    corridor = Corridor(catalog(provider), [AdmissionStep(control, book), AccountingStep(book)])
    ctx = context()
    call = corridor.open(ctx, principal(), chat_request(stream=True))
    stream = await corridor.chat_stream(call)
    assert call.prompt_tokens() > 0  # what a front door reads for message_start
    [batch async for batch in stream]
    assert ctx.usage_estimated and ctx.usage is not None
    assert ctx.usage.prompt_tokens == call.prompt_tokens()
    assert counted == [1]


class Writer:
    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    def submit(self, record: UsageRecord) -> None:
        self.records.append(record)


async def test_usage_records_are_written_for_model_calls_of_known_callers_only() -> None:
    writer = Writer()
    corridor = Corridor(
        catalog(ScriptedProvider("p")),
        [AccountingStep(prices(p=("1", "2")))],
        observers=Observers([UsageRecords(writer)]),  # type: ignore[arg-type]
    )
    ctx = context()
    ctx.operation = "chat"
    ctx.principal = principal()
    await corridor.chat(corridor.open(ctx, ctx.principal, chat_request()))  # type: ignore[arg-type]
    corridor.observers.finished(ctx)
    [record] = writer.records
    assert (record.model, record.provider, record.status) == ("m", "p", 200)
    assert (record.prompt_tokens, record.completion_tokens, record.cost_micros) == (11, 4, 19)
    assert record.app_id == "app_1" and record.key_id == "k1"
    anonymous = context()
    anonymous.operation = "chat"
    corridor.observers.finished(anonymous)  # refused before authentication
    listing = context()
    listing.operation, listing.principal = "models", principal()
    corridor.observers.finished(listing)  # not a model call
    assert len(writer.records) == 1


def test_the_access_log_tells_the_requests_story(caplog: pytest.LogCaptureFixture) -> None:
    from gatewise.core.context import Attempt, GuardrailVerdict

    ctx = context()
    ctx.method, ctx.path, ctx.status, ctx.model = "POST", "/v1/chat/completions", 200, "m"
    ctx.usage = Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5)
    ctx.attempts.append(Attempt("p", "p-model", 503, "upstream_error", 1.0, 2.0))
    ctx.attempts.append(Attempt("q", "q-model", 200, None, 3.0, 4.0))
    ctx.guardrails.append(
        GuardrailVerdict("pii", "EMAIL", 0.9, "mask", "input", 0, ((5, 18, "EMAIL"),))
    )
    ctx.principal = principal()
    caplog.set_level(logging.INFO, logger="gatewise")
    Observers([AccessLog()]).finished(ctx)
    [entry] = caplog.records
    assert entry.getMessage().startswith("POST /v1/chat/completions 200")
    assert entry.provider == "q" and entry.prompt_tokens == 3  # type: ignore[attr-defined]
    assert [a["status"] for a in entry.attempts] == [503, 200]  # type: ignore[attr-defined]
    assert entry.caller == "key:k1"  # type: ignore[attr-defined]
    [verdict] = entry.guardrails  # type: ignore[attr-defined]
    assert verdict["category"] == "EMAIL" and verdict["spans"] == [[5, 18, "EMAIL"]]
