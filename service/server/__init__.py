"""The HTTP service: the FastAPI app, its middleware, streaming, limits, errors and
settings, and the uvicorn runner."""
