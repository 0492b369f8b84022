"""pcclip HTTP API (FastAPI): settings, schemas, routes, services, batching."""
