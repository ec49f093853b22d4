"""One exception hierarchy for everything that can go wrong with a request.

Policies, providers and the pipeline raise these; each front door renders them
in its own wire format (see ``gatewise.http.errors``). An error carries the HTTP
status, an OpenAI-style ``type`` and ``code``, the offending ``param`` and any
headers the client needs (``retry-after`` ...). Messages are written for the
caller: they never contain stack traces or secrets.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base class: a failure the gateway answers with a proper error body."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        self.headers: dict[str, str] = headers or {}


class InvalidRequestError(GatewayError):
    """The request is malformed: bad JSON, a missing or mistyped field."""

    status = 400
    type = "invalid_request_error"


class GuardrailViolationError(GatewayError):
    """A guardrail refused the request or stopped the reply; ``code`` names the guardrail."""

    status = 400
    type = "guardrail_violation"

    def __init__(self, guardrail: str, category: str, message: str | None = None) -> None:
        super().__init__(
            message or f"The request was blocked by the {guardrail} guardrail ({category}).",
            code=guardrail,
        )
        self.category = category


class AuthenticationError(GatewayError):
    """The caller could not be identified (missing, unknown or expired credentials)."""

    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDeniedError(GatewayError):
    """The caller is known but may not do this."""

    status = 403
    type = "invalid_request_error"
    code = "permission_denied"


class NotFoundError(GatewayError):
    """The route or object does not exist."""

    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFoundError(NotFoundError):
    """The requested model is not configured (or not visible to the caller)."""

    code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model `{model}` does not exist or you do not have access to it.",
            param="model",
        )


class MethodNotAllowedError(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class RequestTooLargeError(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class RateLimitError(GatewayError):
    status = 429
    type = "requests"
    code = "rate_limit_exceeded"


class UpstreamError(GatewayError):
    """An upstream answered with an error status; relayed with its status and message."""

    status = 502
    type = "upstream_error"


class UpstreamTimeoutError(GatewayError):
    status = 504
    type = "timeout"
    code = "upstream_timeout"


class UpstreamUnavailableError(GatewayError):
    """The upstream could not be reached or broke the connection."""

    status = 502
    type = "upstream_error"
    code = "upstream_unavailable"


class UpstreamProtocolError(GatewayError):
    """The upstream answered something that is not its documented wire format."""

    status = 502
    type = "upstream_error"
    code = "bad_upstream_response"


class ServiceUnavailableError(GatewayError):
    status = 503
    type = "server_error"
    code = "service_unavailable"


class NoHealthyDeploymentError(ServiceUnavailableError):
    """Every deployment of the model is open or cooling down (``breaker.fail_fast``)."""

    code = "no_healthy_deployment"


class NoDeploymentInRegionError(GatewayError):
    """Residency: no deployment the call may use is in its allowed regions."""

    status = 403
    type = "invalid_request_error"
    code = "no_deployment_in_region"
