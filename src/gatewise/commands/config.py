"""``gatewise config validate`` and ``gatewise config schema``.

Output is plain text, one issue per line (``file:line:col: path: message``), so
it reads well in a terminal, in CI logs and through ``grep``; editors and CI
tools that understand this shape can jump straight to the line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from gatewise.config.loader import ConfigError, load_config
from gatewise.config.models import Config

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def validate_command(file: Path) -> int:
    """Check a config file: 0 and one OK line when valid, else every issue on stderr and 1."""
    try:
        config = load_config(file)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        count = len(exc.issues)
        print(
            f"INVALID: {file} has {count} error{'' if count == 1 else 's'}",
            file=sys.stderr,
        )
        return 1
    print(f"OK: {file} is valid ({len(config.providers)} providers, {len(config.models)} models)")
    return 0


def schema_command() -> int:
    """Print the config's JSON Schema, e.g. for editor completion via yaml-language-server."""
    schema = Config.model_json_schema()
    schema.pop("title", None)
    document = {"$schema": SCHEMA_DIALECT, "title": "Gatewise configuration", **schema}
    print(json.dumps(document, indent=2))
    return 0
