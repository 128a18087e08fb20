"""The web application: the services wired from the settings, their lifespan, the middleware and the routes.

What each part does lives in its own module: webserver.services (the wiring), webserver.audit (one event
per attempt), webserver.routes (login, logout, pages), webserver.health (probes and metrics).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from webserver import health, routes
from webserver.config import Settings
from webserver.middleware import ResponseMiddleware
from webserver.services import Services


def create_app(settings: Settings) -> FastAPI:
    services = Services.build(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with services.running():
            yield

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = services
    app.add_middleware(ResponseMiddleware, metrics=services.metrics, resolver=services.resolver)
    app.include_router(routes.router)
    app.include_router(health.router)
    return app
