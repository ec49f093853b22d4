"""The semantic cache's in-memory index and key: partitions, threshold, TTL, bounds."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("numpy") is None and not os.environ.get("GATEWISE_REQUIRE_SERVICES"):
    pytest.skip("numpy (the semantic-cache extra) is not installed", allow_module_level=True)

import numpy as np

from gatewise.cache.semantic import key_text
from gatewise.cache.semantic_index import SemanticIndex
from gatewise.config.semantic_cache import SemanticCacheConfig
from gatewise.core.types import ChatRequest, Message

DIM = 16


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return np.asarray(vector / np.linalg.norm(vector), dtype=np.float32)


def near(vector: np.ndarray, noise: float, seed: int = 99) -> np.ndarray:
    moved = vector + noise * np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return np.asarray(moved / np.linalg.norm(moved), dtype=np.float32)


def index(max_entries: int = 100, per_partition: int = 100) -> SemanticIndex[str]:
    return SemanticIndex(DIM, max_entries=max_entries, max_per_partition=per_partition)


def test_a_near_vector_hits_and_a_far_one_misses() -> None:
    idx = index()
    stored = unit(1)
    idx.add(("t1", "m"), stored, "reply-1", expires=100.0, now=0.0)
    hit = idx.search(("t1", "m"), near(stored, 0.05), 0.9, now=1.0)
    assert hit is not None and hit[0] == "reply-1" and 0.9 <= hit[1] <= 1.0
    assert idx.search(("t1", "m"), unit(2), 0.9, now=1.0) is None


def test_the_threshold_decides_at_the_similarity_of_the_pair() -> None:
    idx = index()
    stored = unit(3)
    question = near(stored, 0.3)
    similarity = float(stored @ question)
    idx.add(("t", "m"), stored, "r", expires=100.0, now=0.0)
    assert idx.search(("t", "m"), question, similarity - 1e-4, now=0.0) is not None
    assert idx.search(("t", "m"), question, similarity + 1e-4, now=0.0) is None


def test_tenant_a_never_hits_tenant_bs_entry_even_for_the_same_vector() -> None:
    idx = index()
    vector = unit(4)
    idx.add(("tenant-b", "m"), vector, "b's reply", expires=100.0, now=0.0)
    assert idx.search(("tenant-a", "m"), vector, 0.5, now=0.0) is None
    assert idx.search(("tenant-b", "other-model"), vector, 0.5, now=0.0) is None
    found = idx.search(("tenant-b", "m"), vector, 0.5, now=0.0)
    assert found is not None and found[0] == "b's reply" and found[1] == pytest.approx(1.0)


def test_the_nearest_entry_answers() -> None:
    idx = index()
    target = unit(5)
    idx.add(("t", "m"), near(target, 0.4, seed=1), "far", expires=100.0, now=0.0)
    idx.add(("t", "m"), near(target, 0.05, seed=2), "close", expires=100.0, now=0.0)
    found = idx.search(("t", "m"), target, 0.5, now=0.0)
    assert found is not None and found[0] == "close"


def test_an_expired_entry_never_answers_and_makes_room() -> None:
    idx = index(per_partition=2)
    idx.add(("t", "m"), unit(6), "old", expires=10.0, now=0.0)
    assert idx.search(("t", "m"), unit(6), 0.9, now=9.9) is not None
    assert idx.search(("t", "m"), unit(6), 0.9, now=10.0) is None
    idx.add(("t", "m"), unit(7), "b", expires=100.0, now=11.0)
    idx.add(("t", "m"), unit(8), "c", expires=100.0, now=11.0)  # full: the expired row goes
    assert idx.partition_size(("t", "m")) == 2
    assert idx.search(("t", "m"), unit(7), 0.9, now=11.0) is not None
    assert idx.search(("t", "m"), unit(8), 0.9, now=11.0) is not None


def test_a_partition_keeps_at_most_its_bound_and_evicts_its_oldest() -> None:
    idx = index(max_entries=100, per_partition=3)
    for i in range(5):
        idx.add(("t", "m"), unit(10 + i), f"r{i}", expires=100.0, now=0.0)
    assert idx.partition_size(("t", "m")) == 3 and len(idx) == 3
    assert idx.search(("t", "m"), unit(10), 0.99, now=0.0) is None  # the oldest went
    assert idx.search(("t", "m"), unit(11), 0.99, now=0.0) is None
    for i in (2, 3, 4):
        found = idx.search(("t", "m"), unit(10 + i), 0.99, now=0.0)
        assert found is not None and found[0] == f"r{i}"


def test_the_whole_index_keeps_at_most_max_entries_oldest_anywhere_first() -> None:
    idx = index(max_entries=4, per_partition=4)
    idx.add(("a", "m"), unit(20), "a0", expires=100.0, now=0.0)
    idx.add(("b", "m"), unit(21), "b0", expires=100.0, now=0.0)
    idx.add(("a", "m"), unit(22), "a1", expires=100.0, now=0.0)
    idx.add(("b", "m"), unit(23), "b1", expires=100.0, now=0.0)
    idx.add(("c", "m"), unit(24), "c0", expires=100.0, now=0.0)
    assert len(idx) == 4
    assert idx.search(("a", "m"), unit(20), 0.99, now=0.0) is None  # the oldest of all
    assert idx.search(("c", "m"), unit(24), 0.99, now=0.0) is not None
    for _ in range(50):  # churn: the size stays bounded and the rows stay consistent
        idx.add(("d", "m"), unit(25), "d", expires=100.0, now=0.0)
    assert len(idx) == 4
    found = idx.search(("d", "m"), unit(25), 0.99, now=0.0)
    assert found is not None and found[0] == "d"


def test_a_removed_row_is_replaced_by_the_last_one_consistently() -> None:
    idx = index()
    ids = [idx.add(("t", "m"), unit(30 + i), f"r{i}", expires=100.0, now=0.0) for i in range(4)]
    assert idx.remove(("t", "m"), ids[1])
    assert not idx.remove(("t", "m"), ids[1])
    assert idx.search(("t", "m"), unit(31), 0.99, now=0.0) is None
    found = idx.search(("t", "m"), unit(33), 0.99, now=0.0)
    assert found is not None and found[0] == "r3"


def test_a_vector_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match="dimensions"):
        index().add(("t", "m"), np.ones(DIM + 1, dtype=np.float32), "x", expires=1.0, now=0.0)


def chat(*messages: tuple[str, Any], **extra: Any) -> ChatRequest:
    return ChatRequest(
        model="m",
        messages=[Message(role, content) for role, content in messages],  # type: ignore[arg-type]
        **extra,
    )


def test_the_key_is_the_system_prompt_and_the_last_user_message() -> None:
    request = chat(("system", "Be brief."), ("user", "What is TCP?"))
    assert key_text(request, single_turn=True, max_chars=100) == "Be brief.\nWhat is TCP?"
    parts = chat(("user", [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]))
    assert key_text(parts, single_turn=True, max_chars=100) == "a\nb"


def test_calls_the_semantic_cache_must_not_answer_have_no_key() -> None:
    conversation = chat(("user", "Hi"), ("assistant", "Hello"), ("user", "yes, do it"))
    assert key_text(conversation, single_turn=True, max_chars=100) is None
    assert key_text(conversation, single_turn=False, max_chars=100) == "yes, do it"
    tools = chat(("user", "weather?"), tools=[{"type": "function", "function": {"name": "w"}}])
    assert key_text(tools, single_turn=True, max_chars=100) is None
    image = chat(("user", [{"type": "image_url", "image_url": {"url": "data:,"}}]))
    assert key_text(image, single_turn=True, max_chars=100) is None
    assert key_text(chat(("user", "x" * 101)), single_turn=True, max_chars=100) is None
    assert key_text(chat(("user", "q"), n=2), single_turn=True, max_chars=100) is None


def test_config_thresholds_per_model_and_redis_needs_a_url() -> None:
    settings = SemanticCacheConfig(enabled=True, threshold=0.9, thresholds={"gpt-4o": 0.95})
    assert settings.threshold_for("gpt-4o") == 0.95 and settings.threshold_for("other") == 0.9
    with pytest.raises(ValueError, match="redis_url: required"):
        SemanticCacheConfig(backend="redis")
    with pytest.raises(ValueError, match="'local' or 'model:"):
        SemanticCacheConfig(embedder="openai")


def test_a_section_naming_an_unknown_model_or_a_missing_encoder_is_refused(
    tmp_path: Path,
) -> None:
    from gatewise.cache.embedder import EmbedderUnavailable, find_model_dir
    from gatewise.cache.semantic_setup import check_models
    from gatewise.config.models import Config

    config = Config.model_validate(
        {
            "providers": {
                "up": {
                    "type": "openai",
                    "base_url": "http://127.0.0.1:9/v1",
                    "api_key": "${env:NOPE}",
                }
            },
            "models": [{"name": "m", "deployments": [{"provider": "up", "model": "m"}]}],
            "semantic_cache": {"enabled": True, "thresholds": {"nope": 0.9}},
        }
    )
    with pytest.raises(ValueError, match=r"semantic_cache.thresholds: unknown model 'nope'"):
        check_models(config)
    with pytest.raises(EmbedderUnavailable, match="gatewise semantic-cache export-model"):
        find_model_dir(str(tmp_path))
