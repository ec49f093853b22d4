"""What a config becomes at run time, in two lifetimes.

- ``Services`` (``services``): what lives as long as the worker: the records
  database, the identity cache, counters, the usage writer.
- ``Generation`` (``generation``): what one config builds: providers, the
  catalog, the corridor and its steps, observers, the route table. The app
  reads the live generation once per request, so a new one is swapped in
  atomically while requests in flight finish on the old one.
- ``prepare`` (``prepare``): the config's providers and catalog with their
  secrets resolved, nothing heavy imported; ``gatewise serve`` runs it first to
  fail early.
"""

from gatewise.runtime.prepare import MODEL_CREATED, Prepared, StartupError, prepare

__all__ = ["MODEL_CREATED", "Prepared", "StartupError", "prepare"]
