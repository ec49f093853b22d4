"""The ``semantic_cache:`` config section: answer a paraphrase of an earlier question
from the earlier reply.

Only the system prompt(s) and the last user message are embedded; the public model
name must match exactly (it is part of the partition, never of the similarity).
Entries are partitioned by tenant unless ``scope: shared``. ``backend: memory``
keeps the index in each worker; ``backend: redis`` shares entries between workers
and replicas through Redis (each worker searches its own mirror of the vectors, so
a lookup never waits on Redis except to fetch the reply of a hit). PostgreSQL is
not offered: pgvector is not packaged for this project's Debian PostgreSQL 15, and
brute force over rows fetched from PostgreSQL would put a database round trip of
the whole partition on every lookup.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from gatewise.config.base import Name, Strict
from gatewise.config.limits import _check_redis_url

#: The similarity thresholds chosen on the dev split of ``eval/semantic_cache/pairs.jsonl``
#: (``eval/run_semantic_cache_eval.py``) with the lexical guard on (``semantic_guard.py``):
#: cosine alone needs 0.99 there for 97 % precision (its traps, "reset my password"
#: against "reset my colleague's password", embed as close as paraphrases); with the
#: guard, ``threshold`` for a reworded question and ``copy_threshold`` for one with the
#: same content words (typos, word order, "please" aside): on test, 0.955 hit
#: precision and 0.38 recall.
DEFAULT_THRESHOLD = 0.81
DEFAULT_COPY_THRESHOLD = 0.6


def _embedder(value: str) -> str:
    if value == "local":
        return value
    if value.startswith("model:") and len(value) > len("model:"):
        return value
    raise ValueError("must be 'local' or 'model:<a configured embeddings model>'")


class SemanticCacheConfig(Strict):
    """Semantic cache: a paraphrased question answered from the cache."""

    enabled: bool = False
    embedder: Annotated[str, AfterValidator(_embedder)] = Field(
        "local",
        description=(
            "`local`: the bundled all-MiniLM-L6-v2 ONNX encoder (`gatewise semantic-cache "
            "export-model`); `model:<name>`: a configured embeddings model, through the gateway."
        ),
    )
    model_dir: str | None = Field(
        None,
        description=(
            "The local encoder's folder (encoder.onnx, tokenizer.json); default "
            "$GATEWISE_MODEL_DIR/semantic-model or ~/.cache/gatewise/semantic-model, "
            "else the guardrails' injection-model folder."
        ),
    )
    threshold: float = Field(
        DEFAULT_THRESHOLD,
        gt=0.0,
        le=1.0,
        description="Cosine similarity at or above which a stored question answers a new one.",
    )
    copy_threshold: float = Field(
        DEFAULT_COPY_THRESHOLD,
        gt=0.0,
        le=1.0,
        description=(
            "With `guard`: the cosine at or above which a question with the same content "
            "words as a stored one (typos, word order, politeness aside) is answered by it."
        ),
    )
    guard: bool = Field(
        True,
        description=(
            "Check a candidate hit's words before serving it: numbers, negation and, for a "
            "near copy, every content word must agree (off: cosine alone, `threshold`)."
        ),
    )
    thresholds: dict[Name, Annotated[float, Field(gt=0.0, le=1.0)]] = Field(
        default_factory=dict, description="Per public model name: its own threshold."
    )
    models: list[Name] | None = Field(
        None, description="Only these public models are cached (default: every chat model)."
    )
    max_entries: int = Field(
        10_000, ge=1, le=1_000_000, description="Entries kept in all (oldest evicted first)."
    )
    max_entries_per_partition: int = Field(
        2_000,
        ge=1,
        le=1_000_000,
        description="Entries one tenant and model may keep (so no tenant evicts the others).",
    )
    ttl_s: float = Field(3600.0, gt=0, description="An entry answers for this long.")
    max_chars: int = Field(
        4_000, ge=1, description="Longer questions (system prompt + user message) are not cached."
    )
    single_turn: bool = Field(
        True,
        description=(
            "Only calls whose messages are system prompts and one user message are cached: "
            "the key ignores earlier turns, so a short follow-up ('yes, do it') would "
            "otherwise match another conversation's."
        ),
    )
    scope: Literal["tenant", "shared"] = Field(
        "tenant", description="`tenant`: each tenant's entries answer only that tenant."
    )
    backend: Literal["memory", "redis"] = "memory"
    redis_url: Annotated[str, AfterValidator(_check_redis_url)] | None = Field(
        None, description="For backend redis: redis://host:6379/0 (a password: ${env:...})."
    )
    key_prefix: str = Field("gw:sc:", max_length=64)
    sync_interval_s: float = Field(
        0.25, gt=0, le=60, description="How often each worker reads entries others stored."
    )
    timeout_ms: int = Field(200, ge=1, le=10_000)

    @model_validator(mode="after")
    def _redis(self) -> SemanticCacheConfig:
        if self.backend == "redis" and not self.redis_url:
            raise ValueError("redis_url: required when backend is redis")
        if self.max_entries_per_partition > self.max_entries:
            raise ValueError("max_entries_per_partition: must not exceed max_entries")
        return self

    def threshold_for(self, model: str) -> float:
        return self.thresholds.get(model, self.threshold)

    def copy_threshold_for(self, model: str) -> float:
        """Never above the model's own threshold (a copy is at least as safe)."""
        return min(self.copy_threshold, self.threshold_for(model))
