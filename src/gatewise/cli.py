"""The ``gatewise`` command line.

Each command imports what it needs when it runs, so ``gatewise --help`` and
short commands start fast and the server does not load the CLI's libraries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gatewise.commands import identity as identity_cli
from gatewise.commands import prompts as prompts_cli
from gatewise.commands import records as records_cli
from gatewise.commands import semantic_cache as semantic_cache_cli
from gatewise.commands import usage as cli_usage

app = typer.Typer(
    name="gatewise",
    help="Gatewise: an AI gateway managed as code.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Validate and inspect configuration files.", no_args_is_help=True)
app.add_typer(config_app, name="config")
db_app = typer.Typer(help="Manage the records database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
audit_app = typer.Typer(help="Check the tamper-evident audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
guardrails_app = typer.Typer(help="Measure and build the guardrails.", no_args_is_help=True)
app.add_typer(guardrails_app, name="guardrails")

app.add_typer(identity_cli.admin_app, name="admin")
app.add_typer(identity_cli.tenants_app, name="tenants")
app.add_typer(identity_cli.teams_app, name="teams")
app.add_typer(identity_cli.apps_app, name="apps")
app.add_typer(identity_cli.users_app, name="users")
app.add_typer(identity_cli.keys_app, name="keys")
app.command("usage")(cli_usage.usage)
app.add_typer(records_cli.records_app, name="records")
app.add_typer(prompts_cli.prompts_app, name="prompts")
app.add_typer(semantic_cache_cli.semantic_cache_app, name="semantic-cache")

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="The gateway's YAML configuration file.")
]


@app.command()
def serve(
    config: ConfigOption = Path("examples/quickstart.yaml"),
    host: Annotated[Optional[str], typer.Option(help="Override server.host.")] = None,  # noqa: UP045
    port: Annotated[Optional[int], typer.Option(help="Override server.port.")] = None,  # noqa: UP045
    workers: Annotated[Optional[int], typer.Option(help="Override server.workers.")] = None,  # noqa: UP045
) -> None:
    """Run the gateway."""
    from gatewise.server import run

    raise typer.Exit(run(config, host=host, port=port, workers=workers))


@config_app.command("validate")
def config_validate(
    file: Annotated[Path, typer.Argument(help="The YAML configuration file to check.")],
) -> None:
    """Check a config file; print every error with file, line and field. Exit 1 if invalid."""
    from gatewise.commands.config import validate_command

    raise typer.Exit(validate_command(file))


@config_app.command("diff")
def config_diff(
    old: Annotated[Path, typer.Argument(help="The config in force (or the base branch's).")],
    new: Annotated[Path, typer.Argument(help="The proposed config.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Print what changes from OLD to NEW. Exit 0 no changes, 2 changes, 1 an invalid file."""
    from gatewise.commands.config import diff_command

    raise typer.Exit(diff_command(old, new, as_json))


@config_app.command("schema")
def config_schema() -> None:
    """Print the configuration's JSON Schema (for editors and CI)."""
    from gatewise.commands.config import schema_command

    raise typer.Exit(schema_command())


@guardrails_app.command("eval")
def guardrails_eval(
    file: Annotated[Path, typer.Argument(help="JSON Lines: labelled rows or span rows.")],
    profile: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="The profile to run (default: guardrails.check_profile, standard)."),
    ] = None,
    config: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--config", "-c", help="Take profiles from this config."),
    ] = None,
) -> None:
    """Precision, recall, F1, false-positive rate and p50/p99 latency per guardrail and per
    family or entity type."""
    from gatewise.commands.guardrails import eval_command

    raise typer.Exit(eval_command(file, profile, config))


@guardrails_app.command("train")
def guardrails_train(
    out: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="The model folder (default: where the gateway looks for it)."),
    ] = None,
) -> None:
    """Train the optional model tier of prompt_injection (needs gatewise[guardrails-train])."""
    from gatewise.guardrails.injection.model import default_dir
    from gatewise.guardrails.injection.train import main as train

    raise typer.Exit(train(["--out", str(out or default_dir())]))


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = Path("examples/quickstart.yaml")) -> None:
    """Apply the records database's migrations (the gateway also does this when it starts)."""
    from gatewise.commands.db import upgrade_command

    raise typer.Exit(upgrade_command(config))


@audit_app.command("verify")
def audit_verify(
    config: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--config", "-c", help="Verify the database of this config's store.url."),
    ] = None,
    store: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--store", help="Verify the database at this URL (as store.url)."),
    ] = None,
) -> None:
    """Walk the audit trail's hash chain: exit 0 when intact, 1 naming the first edited,
    deleted, reordered or inserted entry, 2 when the database cannot be read."""
    from gatewise.commands.audit import verify_command

    raise typer.Exit(verify_command(config, store))


@app.command("mock-upstream")
def mock_upstream(
    format: Annotated[
        str, typer.Option("--format", help="Wire format: openai, azure, anthropic or gemini.")
    ] = "openai",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9000,
    api_key: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Require this key from callers (default: accept any)."),
    ] = None,
) -> None:
    """Run a fake upstream that speaks a provider's exact wire format (for demos, tests, bench)."""
    from gatewise.testing.cli import run_mock_upstream

    raise typer.Exit(run_mock_upstream(format, host=host, port=port, api_key=api_key))


def main() -> None:
    app()
