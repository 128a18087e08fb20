from __future__ import annotations

import httpx
from podkit.probe import ProbeServer
from prometheus_client import CollectorRegistry, Counter


async def test_health_ready_and_metrics() -> None:
    registry = CollectorRegistry()
    Counter("loginpod_test_things", "things", registry=registry).inc(3)
    state = {"ready": False}
    server = ProbeServer("127.0.0.1", 0, lambda: (state["ready"], "waiting for the source"), registry)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            not_ready = await client.get("/readyz")
            assert not_ready.status_code == 503
            assert not_ready.json()["detail"] == "waiting for the source"
            state["ready"] = True
            assert (await client.get("/readyz")).status_code == 200
            metrics = await client.get("/metrics")
            assert "loginpod_test_things_total 3.0" in metrics.text
            assert (await client.get("/other")).status_code == 404
            assert (await client.post("/healthz")).status_code == 405
    finally:
        await server.close()
