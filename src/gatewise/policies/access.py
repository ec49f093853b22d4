"""Access: may this caller use this model?

Three checks, cheapest first: the role may call models at all; the model is
in every allow-list along the caller's chain (tenant, team, app, key, OIDC
rule); and a model marked ``approval: required`` has an approved
subscription for the caller's app. A refusal is a 403 that says which check
failed and what to do, never a 404: the caller is known and deserves to know.
"""

from __future__ import annotations

from gatewise.core.errors import PermissionDeniedError
from gatewise.corridor.call import Call
from gatewise.corridor.step import Reply, Step
from gatewise.identity.cache import IdentityCache
from gatewise.identity.principal import Principal
from gatewise.identity.roles import Permission


class ModelAccessPolicy:
    def __init__(self, cache: IdentityCache | None, approval_required: frozenset[str]) -> None:
        self._cache = cache
        self.approval_required = approval_required

    def check(self, principal: Principal, model: str) -> None:
        """Raise ``PermissionDeniedError`` unless ``principal`` may call ``model``."""
        if not principal.can(Permission.MODELS_CALL):
            raise PermissionDeniedError(
                f"Your role ({principal.role}) may not call models.", code="permission_denied"
            )
        if not principal.access.allows(model):
            raise PermissionDeniedError(
                f"You are not allowed to use the model `{model}`.",
                param="model",
                code="model_not_allowed",
            )
        if model in self.approval_required and not self._approved(principal, model):
            raise PermissionDeniedError(
                f"The model `{model}` needs an approved subscription: request access for your "
                "app (POST /admin/v1/subscriptions) and ask an admin of your tenant to approve it.",
                param="model",
                code="subscription_required",
            )

    def may_use(self, principal: Principal, model: str) -> bool:
        try:
            self.check(principal, model)
        except PermissionDeniedError:
            return False
        return True

    def _approved(self, principal: Principal, model: str) -> bool:
        if self._cache is None:
            return False
        return self._cache.directory.is_approved(principal.app_id, model)


class AccessStep(Step):
    """The corridor's first room: the caller may use the model, or the call ends in a 403."""

    name = "access"

    def __init__(self, policy: ModelAccessPolicy) -> None:
        self.policy = policy

    async def before(self, call: Call) -> Reply | None:
        if call.principal is not None:
            self.policy.check(call.principal, call.model)
        return None
