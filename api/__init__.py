"""The REST layer: FastAPI app factory, auth, rate limit, schemas, routes."""

from api.app import create_app

__all__ = ["create_app"]
