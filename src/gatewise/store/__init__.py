"""Records: the gateway's durable data (stored responses today; keys, tenants, usage later).

SQLAlchemy 2 Core on asyncio, one code path for two engines: SQLite (embedded,
the default) and PostgreSQL (shared by many gateway instances). The schema is
owned by Alembic migrations that run when the gateway starts.

This package's ``__init__`` imports nothing heavy: the config schema imports
``gatewise.store.urls`` to validate ``store.url`` without loading SQLAlchemy.
"""
