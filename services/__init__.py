"""Ray Serve deployments, the FastAPI gateway and the CLI."""
