"""Response caches: the exact cache (``keys``, ``store``, ``memory``, ``redis``, ``step``,
``replay``) and the semantic cache; each answers a call without calling an upstream."""
