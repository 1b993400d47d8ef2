"""Request and response models of the HTTP API (the OpenAPI schema is generated from them)."""
