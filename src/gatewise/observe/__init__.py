"""Observers of the corridor: the access log and usage records (next: metrics, traces).

Each is a ``corridor.observer.Observer``: told about every attempt and every
finished request, never changing one.
"""
