"""A generation: the immutable set of live objects one config builds, swapped whole.

``build_generation`` is the one place that assembles the request's story from
the config: the steps of the corridor in order (access, admission,
guardrails per profile, accounting; caching joins here), the observers, the front doors
and the route table. The app reads its current generation once per request;
``GatewayApp.swap`` puts a new one in place atomically and closes the old one
once the requests it was serving have finished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gatewise.config.models import Config
from gatewise.corridor.chain import Corridor
from gatewise.corridor.observer import Observer, Observers
from gatewise.corridor.step import Step
from gatewise.guardrails.setup import Guardrails, used_profiles
from gatewise.guardrails.steps import profile_steps
from gatewise.http.anthropic import AnthropicFrontDoor
from gatewise.http.guardrails import GuardrailCheckEndpoint
from gatewise.http.models import ClientErrors, ModelsEndpoint
from gatewise.http.openai import OpenAIFrontDoor
from gatewise.http.prompts import PromptFrontDoor
from gatewise.http.responses import ResponsesFrontDoor
from gatewise.http.routes import Endpoint, ErrorFormat, RouteTable
from gatewise.observe.access_log import AccessLog
from gatewise.observe.records import RequestRecords
from gatewise.observe.usage import UsageRecords
from gatewise.policies.access import AccessStep, ModelAccessPolicy
from gatewise.policies.accounting import AccountingStep
from gatewise.policies.admission import AdmissionStep
from gatewise.policies.auth import Authenticator
from gatewise.prompts.registry import PromptRegistry, build_registry
from gatewise.providers.base import Provider
from gatewise.routing.catalog import ModelCatalog
from gatewise.routing.checks import HealthChecks
from gatewise.routing.residency import Residency
from gatewise.routing.router import Router
from gatewise.runtime.prepare import Prepared, prepare
from gatewise.runtime.services import Services

log = logging.getLogger("gatewise")


@dataclass
class Generation:
    """What one config serves with. Nothing in it changes once built; ``in_flight`` counts
    the requests it is serving, so it is closed only once they are done."""

    config: Config
    providers: dict[str, Provider]
    catalog: ModelCatalog
    corridor: Corridor
    observers: Observers
    routes: RouteTable
    authenticator: Authenticator
    guardrails: Guardrails
    #: The error format of a path no route serves (the client's SDK family decides).
    unrouted: ErrorFormat
    #: Requests being served (the app counts them in and out).
    in_flight: int = 0
    #: Set once the generation was swapped out: the app sets it when the last request ends.
    draining: asyncio.Event | None = None

    #: Active health checks of deployments (``routing.health_checks``), if any.
    checks: HealthChecks | None = None
    #: The prompts served as endpoints (``prompts``).
    prompts: PromptRegistry = field(default_factory=PromptRegistry)

    async def start(self) -> None:
        for provider in self.providers.values():
            await provider.start()
        if self.checks is not None:
            self.checks.start()

    async def close(self) -> None:
        if self.checks is not None:
            await self.checks.close()
        for provider in self.providers.values():
            await provider.close()
        await self.guardrails.close()

    async def drained(self) -> None:
        """Wait until no request is being served by this generation."""
        if self.in_flight:
            self.draining = asyncio.Event()
            await self.draining.wait()


def corridor_steps(
    services: Services, access: ModelAccessPolicy, guarding: Sequence[Step] = ()
) -> list[Step]:
    """The corridor's rooms, in the order every call walks them: who may call, whether
    limits admit it, what the guardrails say (each profile's lane adds its own), then
    what it cost."""
    traffic = services.traffic
    steps: list[Step] = [AccessStep(access)]
    records = services.records
    if records is not None and records.bodies is not None:
        steps.insert(0, records.bodies)  # sees the client's request and the final reply
    if traffic.traffic is not None:
        steps.append(AdmissionStep(traffic.traffic, traffic.prices))
    steps.extend(guarding)
    if services.cache.step is not None:  # an identical earlier call answers this one
        steps.append(services.cache.step)
    if services.semantic_cache.step is not None:  # a paraphrase answered from the cache
        steps.append(services.semantic_cache.step)
    steps.append(AccountingStep(traffic.prices))
    return steps


def guardrail_lanes(
    services: Services, access: ModelAccessPolicy, guardrails: Guardrails
) -> dict[str, list[Step]]:
    """One lane per profile some caller or model is given."""
    lanes: dict[str, list[Step]] = {}
    for name in used_profiles(guardrails):
        lanes[name] = corridor_steps(services, access, profile_steps(guardrails.profile(name)))
    return lanes


def observers(config: Config, services: Services) -> list[Observer]:
    """Who is told about attempts and finished requests."""
    found: list[Observer] = []
    if config.store.usage_records:
        found.append(UsageRecords(services.usage_writer))
    if services.records is not None and config.observability.records.enabled:
        found.append(RequestRecords(services.records.writer))
    if config.observability.logs.request_lines(config.server.access_log):
        found.append(AccessLog())
    if config.observability.tracing.enabled:  # (traceparent sent upstream even unexported)
        from gatewise.observe.tracing import Tracing

        types = {name: provider.type for name, provider in config.providers.items()}
        found.append(Tracing(config.observability.tracing, services.spans, types))
    if services.metrics is not None and config.observability.metrics.enabled:
        found.append(services.metrics.observer(config))
    if config.prompts.inline or config.prompts.folder:  # per-version outcomes of prompts
        found.append(services.prompt_outcomes)
    alerts, sender = config.guardrails.alerts, services.traffic.sender
    if alerts is not None and sender is not None:  # security alerts: blocks per window
        from gatewise.alerts.guardrail_blocks import GuardrailBlockAlerts

        found.append(
            GuardrailBlockAlerts(
                sender, alerts.webhook, threshold=alerts.threshold,
                window_seconds=alerts.window_seconds,
            )
        )  # fmt: skip
    if services.audit is not None:  # guardrail blocks into the audit trail
        blocks = services.audit.observer(config.observability.audit)
        if blocks is not None:
            found.append(blocks)
    return found


#: Where Anthropic clients post messages: ``/v1/messages`` (the SDKs given the gateway's
#: root), ``/messages`` (clients that append ``/messages`` to their base URL, such as
#: ``@ai-sdk/anthropic``, given the root) and ``/v1/v1/messages`` (the SDKs given a
#: base URL that already ends in ``/v1``).
ANTHROPIC_PREFIXES = ("/v1", "", "/v1/v1")


def anthropic_routes(anthropic: AnthropicFrontDoor) -> list[tuple[str, Endpoint]]:
    messages = Endpoint({"POST": anthropic.messages}, anthropic)
    count = Endpoint({"POST": anthropic.count_tokens}, anthropic)
    routes: list[tuple[str, Endpoint]] = []
    for prefix in ANTHROPIC_PREFIXES:
        routes += [(prefix + "/messages", messages), (prefix + "/messages/count_tokens", count)]
    return routes


def build_generation(
    config: Config,
    services: Services,
    config_dir: Path | None = None,
    prepared: Prepared | None = None,
) -> Generation:
    if prepared is None:
        prepared = prepare(config, config_dir)
    approval = frozenset(m.name for m in config.models if m.approval == "required")
    access = ModelAccessPolicy(services.identity_cache, approval)
    watchers = Observers(observers(config, services))
    guardrails = prepared.guardrails
    guardrails.directory = lambda: services.identity_cache.directory
    model_names = [model.name for model in config.models]
    prompts = build_registry(config.prompts, config_dir, model_names, guardrails.profiles)
    if services.records is not None:  # privacy modes, before the lanes take its step
        services.records.configure(config.observability.records)
    services.cache.configure(config, config_dir)  # before the lanes take its step
    services.semantic_cache.configure(config, config_dir)  # before the lanes take its step
    lanes = guardrail_lanes(services, access, guardrails)
    for name in sorted(prompts.profiles() - {"off", *lanes}):  # a prompt's profile: a lane
        lanes[name] = corridor_steps(services, access, profile_steps(guardrails.profile(name)))
    services.configure_routing(config)
    router = Router(
        config.routing,
        services.health,
        Residency(config.routing.residency, lambda: services.identity_cache.directory),
        prepared.catalog,
    )
    corridor = Corridor(
        prepared.catalog,
        corridor_steps(services, access),
        lanes=lanes,
        choose_lane=guardrails.choose,
        router=router,
        observers=watchers,
        access=access,
    )
    open_mode = config.auth.mode == "open"
    authenticator = Authenticator(services.identity_cache, services.verifier, open_mode=open_mode)
    limit = config.server.max_request_body_bytes
    openai = OpenAIFrontDoor(corridor, limit)
    anthropic = AnthropicFrontDoor(corridor, limit)
    models = ModelsEndpoint(openai, anthropic)
    responses = ResponsesFrontDoor(corridor, services.responses, limit, openai)
    check = GuardrailCheckEndpoint(guardrails, services.traffic.traffic, limit, openai)
    routes = RouteTable(
        [
            ("/v1/chat/completions", Endpoint({"POST": openai.chat_completions}, openai)),
            ("/v1/embeddings", Endpoint({"POST": openai.embeddings}, openai)),
            ("/v1/models", Endpoint({"GET": models.list}, models)),
            ("/v1/models/{model:path}", Endpoint({"GET": models.retrieve}, models)),
            ("/v1/responses", Endpoint({"POST": responses.create}, responses)),
            (
                "/v1/responses/{response_id}",
                Endpoint({"GET": responses.retrieve, "DELETE": responses.delete}, responses),
            ),
            (
                "/v1/responses/{response_id}/input_items",
                Endpoint({"GET": responses.input_items}, responses),
            ),
            ("/v1/guardrails/check", Endpoint({"POST": check.check}, check)),
            *anthropic_routes(anthropic),
        ]
    )
    if services.metrics is not None and config.observability.metrics.enabled:
        services.metrics.configure(config, config_dir)  # Prometheus scrapes every worker's counts
        scrape = Endpoint({"GET": services.metrics.serve}, openai, public=True)
        routes.add(config.observability.metrics.path, scrape)
    directory = lambda: services.identity_cache.directory  # noqa: E731
    door = PromptFrontDoor(corridor, prompts, limit, services.prompt_outcomes, directory)
    for path, endpoint in door.routes():  # POST /api/<prompt>[/v<N>], GET /v1/prompts ...
        routes.add(path, endpoint)
    return Generation(
        config=config,
        providers=prepared.providers,
        catalog=prepared.catalog,
        corridor=corridor,
        observers=watchers,
        routes=routes,
        authenticator=authenticator,
        guardrails=guardrails,
        unrouted=ClientErrors(openai, anthropic),
        checks=HealthChecks(config.routing.health_checks, prepared.catalog, router),
        prompts=prompts,
    )
