"""Configuration: schema, loading with secret references, validation errors."""
