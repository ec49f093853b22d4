"""CPU cost of the metrics observer per request (issue 15's budget: <= ~15 µs for metrics).

Times ``MetricsObserver.finished`` on a typical finished chat call (one attempt, usage,
a cost) and on a refused one (no attempt), spread over a few models, and the
scrape's work (merge and render) for the resulting series. Run:
``.venv/bin/python bench/metrics_cost.py [--calls N]``. The end-to-end figure comes from
``bench/compare.py`` with metrics on and off.
"""

from __future__ import annotations

import argparse
import time

from gatewise.config.models import Config
from gatewise.core.context import Attempt, RequestContext
from gatewise.core.types import Usage
from gatewise.observe.metrics_exposition import render
from gatewise.observe.metrics_share import Sharing
from gatewise.observe.metrics_store import merge
from gatewise.observe.metrics_worker import WorkerMetrics

MODELS = [f"model-{n}" for n in range(5)]


def config() -> Config:
    return Config.model_validate(
        {
            "providers": {"up": {"type": "mock"}},
            "models": [
                {"name": m, "deployments": [{"provider": "up", "model": m}]} for m in MODELS
            ],
        }
    )


def contexts(count: int, *, refused: bool) -> list[RequestContext]:
    made = []
    for index in range(count):
        ctx = RequestContext("req_x", "POST", "/v1/chat/completions", "chat", MODELS[index % 5])
        if refused:
            ctx.status = 401
        else:
            ctx.attempts.append(Attempt("up", "m", 200, None, 80.0, 120.0, "d"))
            ctx.usage = Usage(prompt_tokens=120, completion_tokens=40, total_tokens=160)
            ctx.cost_micros = 310
        made.append(ctx)
    return made


def per_call(calls: int, *, refused: bool) -> float:
    worker = WorkerMetrics(config().observability.metrics, None)
    observer = worker.observer(config())
    batch = contexts(calls, refused=refused)
    finished = observer.finished
    started = time.process_time()
    for ctx in batch:
        finished(ctx)
    return (time.process_time() - started) / calls * 1e6


def scrape_ms() -> float:
    worker = WorkerMetrics(config().observability.metrics, None)
    observer = worker.observer(config())
    for ctx in contexts(1000, refused=False):
        observer.finished(ctx)
    sharing = Sharing(worker.store, None, 1.0, lambda snapshot: None)
    started = time.process_time()
    for _ in range(20):
        render(merge(sharing.everyone() * 2), {"up": "mock"})
    return (time.process_time() - started) / 20 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    for refused in (False, True):
        best = min(per_call(args.calls, refused=refused) for _ in range(3))
        kind = "refused (401, no upstream)" if refused else "chat call (1 attempt, usage, cost)"
        print(f"finished(): {best:.2f} µs CPU per {kind}")
    print(f"scrape of two workers (merge + render): {scrape_ms():.2f} ms CPU")


if __name__ == "__main__":
    main()
