"""``gatewise prompts list|test``: the prompts a config serves, and their test cases.

``test`` exits 1 when a case fails (2 when the config or prompts are invalid), so a
merge request that breaks a prompt fails its pipeline; ``--junit`` writes the
report CI shows per case.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Optional

import typer

prompts_app = typer.Typer(help="List and test prompt endpoints.", no_args_is_help=True)

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="The gateway's YAML configuration file.")
]


def _load(config: Path) -> tuple[object, Path | None]:
    from gatewise.config.loader import ConfigError, load

    try:
        loaded = load(config)
    except ConfigError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    return loaded.config, loaded.base_dir


@prompts_app.command("list")
def list_prompts(config: ConfigOption = Path("gatewise.yaml")) -> None:
    """The prompts, their paths and versions (those serving unpinned calls marked *)."""
    from gatewise.config.loader import ConfigError
    from gatewise.config.models import Config
    from gatewise.prompts.registry import build_registry

    loaded, base = _load(config)
    assert isinstance(loaded, Config)
    names = [m.name for m in loaded.models]
    try:
        registry = build_registry(loaded.prompts, base, names, loaded.guardrails.all_profiles())
    except ConfigError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    for family in registry.families.values():
        serving = {v.version for v in family.rollout.versions}
        shown = []
        for number in sorted(family.versions):
            version = family.versions[number]
            mark = "*" if number in serving else ""
            mark += " (deprecated)" if version.deprecated else ""
            shown.append(f"v{number}{mark}")
        typer.echo(f"{family.name}\t{family.path}\t{', '.join(shown)}")


@prompts_app.command("test")
def test(
    config: ConfigOption = Path("gatewise.yaml"),
    model: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Run every case on this model (a configured one, or mock)."),
    ] = None,
    junit: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="Write a JUnit XML report here."),
    ] = None,
    prompt: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(help="Only this prompt (repeatable)."),
    ] = None,
) -> None:
    """Run the prompts' test cases; exit 1 if any fails."""
    from gatewise.config.loader import ConfigError
    from gatewise.config.models import Config
    from gatewise.prompts.testing import junit_xml, run_tests

    loaded, base = _load(config)
    assert isinstance(loaded, Config)
    try:
        results = asyncio.run(run_tests(loaded, base, model=model, only=prompt or ()))
    except (ConfigError, ValueError) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    for result in results:
        status = "PASS" if result.passed else "FAIL"
        typer.echo(f"{status}  {result.title}  ({result.seconds * 1000:.0f} ms)")
        for failure in result.failures:
            typer.echo(f"      {failure}")
    failed = sum(1 for r in results if not r.passed)
    typer.echo(f"{len(results) - failed} passed, {failed} failed")
    if junit is not None:
        junit.write_bytes(junit_xml(results))
    if failed or not results:
        raise typer.Exit(1)
