"""Shared counters for limits and budgets: in memory (one process) or in Redis (many)."""
