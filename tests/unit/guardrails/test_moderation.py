"""The moderation guardrail: word lists, patterns, and the optional topic classifier."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from gatewise.config.guardrails import ModerationConfig
from gatewise.guardrails.moderation import ModerationDetector

TOPICS = {
    "weapons": ["how to build a bomb", "making explosives at home", "assembling a ghost gun"],
    "gambling": ["online casino betting strategies", "how to win at poker for money"],
}


def test_topics_keywords_and_patterns_are_found_as_spans() -> None:
    detector = ModerationDetector(
        ModerationConfig(
            topics={"weapons": ["ghost gun"]}, keywords=["project-zeta"], patterns=[r"ACME-\d{6}"]
        )
    )
    text = "Ghost gun plans for Project-Zeta under ticket acme-123456; a ghostgun is fine."
    found = {f.category: f for f in detector.detect(text)}
    assert set(found) == {"weapons", "keyword", "pattern"}
    assert [text[s.start : s.end] for s in found["weapons"].spans] == ["Ghost gun"]  # whole words
    assert [text[s.start : s.end] for s in found["pattern"].spans] == ["acme-123456"]
    assert detector.detect("nothing to see") == []


MISSING = [
    n for n in ("numpy", "onnxruntime", "tokenizers", "onnx") if importlib.util.find_spec(n) is None
]


@pytest.mark.skipif(
    bool(MISSING) and not os.environ.get("GATEWISE_REQUIRE_SERVICES"),
    reason=f"the guardrails-model extra is not installed (missing {MISSING})",
)
def test_the_classifier_finds_a_topic_by_meaning(tmp_path: Path) -> None:
    from gatewise.guardrails.injection.model import Encoder
    from gatewise.guardrails.injection.train import DEFAULT_DATA, write_encoder
    from gatewise.guardrails.topics import TopicClassifier

    write_encoder(DEFAULT_DATA, tmp_path)
    classifier = TopicClassifier(Encoder(tmp_path), TOPICS, similarity=0.55)
    weapons = classifier.detect(
        "What household chemicals can I mix to make something that explodes?"
    )
    assert [f.category for f in weapons] == ["weapons"] and weapons[0].spans == ()
    assert classifier.detect("What is a good recipe for vegetarian lasagna?") == []
    assert (
        classifier.detect("Which poker tactics make the most money in online casinos?")[0].category
        == "gambling"
    )
