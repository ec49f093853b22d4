"""The admin REST API (FastAPI, under /admin/v1): tenants, teams, apps, users, keys,
subscriptions and the audit trail. Built by ``gatewise.admin.app.create_admin_app``;
imported only when the admin API is served, never on the hot path."""
