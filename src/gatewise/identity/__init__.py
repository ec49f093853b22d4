"""Who is calling: virtual keys, tenants/teams/apps/users, roles, OIDC callers, subscriptions."""
