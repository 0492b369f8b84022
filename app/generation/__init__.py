"""SDXL generation: the generator (pipeline, bridge, loading) and the job manager (one GPU worker).
The service between the routes and the jobs is `app.services.generation`."""
