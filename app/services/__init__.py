"""Services: what each endpoint does, independent of HTTP. Routes call these; they raise the
domain errors of `app.errors` and return response schemas."""
