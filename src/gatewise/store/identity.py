"""The identity records store: tenants, teams, apps, users, keys, subscriptions and audit.

One class for callers (the admin API, the CLI, the gateway's cache); its
methods live in small parts by subject. Every mutation is one transaction
that changes the rows, writes an audit row (never a key's hash) and bumps the
identity version, so the gateway's in-memory snapshot knows to reload. An
update that names no field changes nothing: it writes, audits and bumps nothing.
Each part's methods say what they promise; ``tests/integration/test_identity_store.py``
holds them to it on SQLite and PostgreSQL.
"""

from __future__ import annotations

from gatewise.store.identity_base import Conflict, IdentityError, Invalid, NotFound, Page
from gatewise.store.identity_flows import FlowStore
from gatewise.store.identity_keys import KeyStore
from gatewise.store.identity_members import MemberStore
from gatewise.store.identity_orgs import OrgStore

__all__ = ["Conflict", "IdentityError", "IdentityStore", "Invalid", "NotFound", "Page"]


class IdentityStore(OrgStore, MemberStore, KeyStore, FlowStore):
    """All identity records behind one object: ``IdentityStore(database)``."""
