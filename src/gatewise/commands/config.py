"""``gatewise config validate`` and ``gatewise config schema``.

Output is plain text, one issue per line (``file:line:col: path: message``), so
it reads well in a terminal, in CI logs and through ``grep``; editors and CI
tools that understand this shape can jump straight to the line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

from pydantic import Field, create_model

from gatewise.config.base import Name
from gatewise.config.loader import ConfigError, load_config
from gatewise.config.models import Config
from gatewise.config.plugins import PluginError, entry_point_names
from gatewise.config.providers import (
    BUILTIN_PROVIDER_CONFIGS,
    PROVIDER_PLUGINS,
    ProviderBase,
    ProviderSection,
    plugin_provider_config,
    provider_type_name,
)

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def validate_command(file: Path) -> int:
    """Check a config file: 0 and one OK line when valid, else every issue on stderr and 1."""
    try:
        config = load_config(file)
        from gatewise.prompts.registry import check_prompts

        check_prompts(config, file.parent, str(file))  # the prompt folder's files too
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
    """Print the config's JSON Schema, e.g. for editor completion via yaml-language-server.

    Installed plug-in provider types are described too.
    """
    schema = _config_with(_plugin_provider_configs()).model_json_schema()
    schema.pop("title", None)
    document = {"$schema": SCHEMA_DIALECT, "title": "Gatewise configuration", **schema}
    print(json.dumps(document, indent=2))
    return 0


def _plugin_provider_configs() -> list[type[ProviderBase]]:
    """Installed plug-in provider types' config models; a broken one is left out with a warning."""
    builtin = {provider_type_name(model) for model in BUILTIN_PROVIDER_CONFIGS}
    models: list[type[ProviderBase]] = []
    for name in entry_point_names(PROVIDER_PLUGINS):
        if name in builtin:
            continue
        try:
            model = plugin_provider_config(name)
        except PluginError as exc:
            print(f"warning: {exc}; the schema leaves this provider type out", file=sys.stderr)
            continue
        if model is not None:
            models.append(model)
    return models


def _config_with(plugins: list[type[ProviderBase]]) -> type[Config]:
    """``Config``, or a subclass whose provider sections also describe these plug-in types."""
    if not plugins:
        return Config
    section = ProviderSection([*BUILTIN_PROVIDER_CONFIGS, *plugins])
    return create_model(
        "Config",
        __base__=Config,
        __doc__=Config.__doc__,
        providers=(dict[Name, Annotated[ProviderBase, section]], Field(default_factory=dict)),
    )


def diff_command(old: Path, new: Path, as_json: bool = False) -> int:
    """Print the plan from OLD to NEW: exit 0 when nothing changes, 2 when something does,
    1 when either file is invalid (its file:line errors on stderr)."""
    from gatewise.config.plan import diff_configs, render_text
    from gatewise.prompts.registry import check_prompts

    loaded = []
    failed = False
    for file in (old, new):
        try:
            config = load_config(file)
            loaded.append((config, check_prompts(config, file.parent, str(file))))
        except ConfigError as exc:
            for issue in exc.issues:
                print(issue, file=sys.stderr)
            print(f"INVALID: {file}", file=sys.stderr)
            failed = True
    if failed:
        return 1
    (old_config, old_prompts), (new_config, new_prompts) = loaded
    plan = diff_configs(old_config, new_config, old_prompts, new_prompts)
    if as_json:
        print(json.dumps(plan.to_json(), indent=2, sort_keys=False))
    else:
        print(render_text(plan))
    return 2 if plan.has_changes else 0
