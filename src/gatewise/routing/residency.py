"""Data residency: the regions a caller's calls may go to.

Every restriction that applies narrows the set: the tenant's, the team's, the app's
and the key's under ``routing.residency``, then the model's own ``regions``. None
means unrestricted; an empty set means nowhere (restrictions that do not overlap).
Teams and apps are named ``tenant/name``, as guardrail assignments name them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gatewise.config.routing import ResidencyConfig

if TYPE_CHECKING:
    from gatewise.identity.directory import Directory
    from gatewise.identity.principal import Principal

Regions = frozenset[str] | None


def narrow(allowed: Regions, more: Regions) -> Regions:
    if more is None:
        return allowed
    return more if allowed is None else allowed & more


class Residency:
    """Resolves a caller's allowed regions from the config and the identity directory."""

    def __init__(
        self,
        config: ResidencyConfig,
        directory: Callable[[], Directory | None] | None = None,
    ) -> None:
        self.tenants = {k: frozenset(v) for k, v in config.tenants.items()}
        self.teams = {k: frozenset(v) for k, v in config.teams.items()}
        self.apps = {k: frozenset(v) for k, v in config.apps.items()}
        self.keys = {k: frozenset(v) for k, v in config.keys.items()}
        #: No caller is restricted: the router skips this entirely.
        self.empty = not (self.tenants or self.teams or self.apps or self.keys)
        self.directory = directory

    def allowed(self, principal: Principal | None) -> Regions:
        if self.empty or principal is None:
            return None
        regions: Regions = None
        if principal.key_id is not None:
            regions = narrow(regions, self.keys.get(principal.key_id))
        if principal.tenant_id is None:
            return regions
        directory = self.directory() if self.directory is not None else None
        if directory is None:
            return narrow(regions, self.tenants.get(principal.tenant_id))
        tenant, team, app = directory.config_names(
            principal.tenant_id, principal.team_id, principal.app_id
        )
        regions = narrow(regions, self.tenants.get(tenant))
        if team is not None:
            regions = narrow(regions, self.teams.get(team))
        if app is not None:
            regions = narrow(regions, self.apps.get(app))
        return regions
