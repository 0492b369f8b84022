"""SDXL generation jobs: the generator slot (loading), the job manager (one GPU worker), the service."""
