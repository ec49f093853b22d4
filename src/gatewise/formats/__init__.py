"""Wire formats: translation between each public API's JSON and the canonical types."""
