"""The service in-process: watcher wake-ups, probes, graceful stop, and shipping to a real local HTTP sink."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from adapter.config import Settings
from adapter.service import AdapterService
from lxml import etree
from podkit import watch as watcher_module
from podkit_testing import Fault, SinkServer, wait_until


def settings_for(shared: Path, **overrides: Any) -> Settings:
    base = Settings.from_env({"SHARED_DIR": str(shared), "METRICS_HOST": "127.0.0.1", "METRICS_PORT": "0"})
    return replace(base, **overrides)


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[AdapterService]:
    service = AdapterService(settings)
    task = asyncio.create_task(service.run())
    try:
        yield service
    finally:
        service.request_stop()
        await asyncio.wait_for(task, 10)


async def get(service: AdapterService, path: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(f"http://127.0.0.1:{service.probe.port}{path}")


async def test_the_watcher_wakes_conversion_and_probes_answer(shared: Path, kit: Any, xsd: etree.XMLSchema) -> None:
    # A rescan interval far beyond the test: only the file watcher can make this document appear in time.
    async with running(settings_for(shared, rescan_interval=600.0)) as service:
        await wait_until(lambda: service.watcher.running, what="the watcher")
        assert (await get(service, "/healthz")).status_code == 200
        ready = await get(service, "/readyz")
        assert ready.status_code == 200, ready.text
        event = kit.make_event()
        kit.append_segment(shared, 1, kit.event_lines([event]))
        await wait_until(lambda: kit.checkpoint(shared) is not None, within=5, what="a document")
        assert kit.converted_ids(shared, xsd) == [event["event_id"]]
        metrics = (await get(service, "/metrics")).text
        assert "loginpod_adapter_events_converted_total 1.0" in metrics
        assert "loginpod_adapter_documents_written_total 1.0" in metrics
        assert "loginpod_adapter_lag_bytes 0.0" in metrics
        assert "loginpod_adapter_documents_deleted_total 0.0" in metrics
        assert f"loginpod_adapter_xml_bytes {float(sum(p.stat().st_size for p in shared.glob('xml/*.xml')))}" in metrics
        for name in ("deadletter_total", "dropped_keys_total", "sanitized_values_total", "convert_seconds_bucket"):
            assert f"loginpod_adapter_{name}" in metrics


async def test_without_the_watcher_the_rescan_converts_and_readyz_says_so(
    shared: Path, kit: Any, xsd: etree.XMLSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_awatch(*args: Any, **kwargs: Any) -> Any:
        raise OSError("injected: inotify unavailable")

    monkeypatch.setattr(watcher_module, "awatch", broken_awatch)
    async with running(settings_for(shared, rescan_interval=0.05)) as service:
        event = kit.make_event()
        kit.append_segment(shared, 1, kit.event_lines([event]))
        await wait_until(lambda: kit.checkpoint(shared) is not None, what="a document")
        assert kit.converted_ids(shared, xsd) == [event["event_id"]]
        response = await get(service, "/readyz")
        assert response.status_code == 503
        assert "watcher" in response.json()["detail"]


async def test_a_stop_finishes_the_current_document_and_its_checkpoint(
    shared: Path, kit: Any, xsd: etree.XMLSchema
) -> None:
    events = [kit.make_event() for _ in range(3000)]
    kit.append_segment(shared, 1, kit.event_lines(events))
    async with running(settings_for(shared, batch_max_events=50)):
        await wait_until(lambda: kit.checkpoint(shared) is not None, what="a first document")
    documents = sorted((shared / "xml").glob("*.xml"))
    last_end = int(documents[-1].name.split("-")[-1].removesuffix(".xml"))
    assert kit.checkpoint(shared) == {"version": 1, "segment": "events-00000001.jsonl", "offset": last_end}
    assert list((shared / "xml").glob(".*")) == []
    ids = kit.converted_ids(shared, xsd)
    assert ids == [e["event_id"] for e in events[: len(ids)]]


@dataclass
class Sink:
    """A real HTTP server on a free port that answers POSTs with scripted statuses (then 200)."""

    statuses: list[int]
    received: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        status = self.statuses.pop(0) if self.statuses else 200
        self.received.append((status, headers, body))
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()


async def test_documents_are_shipped_with_retries_and_refusals_dead_lettered(
    shared: Path, kit: Any, xsd: etree.XMLSchema
) -> None:
    sink = Sink(statuses=[503, 200, 400])
    server = await asyncio.start_server(sink.handle, "127.0.0.1", 0)
    sink.port = server.sockets[0].getsockname()[1]
    settings = settings_for(
        shared, sink_url=f"http://127.0.0.1:{sink.port}/xml", sink_max_backoff=0.05, rescan_interval=0.05
    )
    try:
        async with running(settings) as service:
            for count in range(1, 4):  # one event, so one document, at a time
                kit.append_segment(shared, 1, kit.event_lines([kit.make_event()]))
                await wait_until(lambda c=count: len(list((shared / "xml").glob("*.xml"))) == c, what="a document")
            await wait_until(lambda: len(sink.received) >= 4, what="deliveries")
            names = sorted(path.name for path in (shared / "xml").glob("*.xml"))
            ship = shared / "state" / "adapter" / "ship.json"
            await wait_until(
                lambda: ship.exists() and json.loads(ship.read_text()) == {"document": names[-1]}, what="ship.json"
            )
            metrics = (await get(service, "/metrics")).text
    finally:
        server.close()
        await server.wait_closed()
    statuses = [status for status, _, _ in sink.received]
    assert statuses[:3] == [503, 200, 400]
    shipped = [headers["x-loginpod-document"] for _, headers, _ in sink.received]
    assert shipped[0] == shipped[1] == names[0]  # retried after the 503
    assert shipped[2] == names[1]
    assert set(shipped) == set(names)
    for _, headers, body in sink.received:
        assert headers["content-type"] == "application/xml"
        xsd.assertValid(etree.fromstring(body))
    assert [letter["document"] for letter in kit.dead_letters(shared)] == [names[1]]
    assert 'loginpod_adapter_ship_retries_total{reason="status 503"} 1.0' in metrics
    assert "loginpod_adapter_documents_rejected_total 1.0" in metrics


async def test_retention_keeps_what_the_sink_has_not_taken_then_frees_it(
    shared: Path, kit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapter.retention")
    async with SinkServer(outage=Fault(503)) as sink:
        settings = settings_for(
            shared, sink_url=sink.url, sink_max_backoff=0.05, rescan_interval=0.05, retention_bytes=1
        )
        async with running(settings) as service:
            for count in range(1, 5):  # one event, so one document, at a time
                kit.append_segment(shared, 1, kit.event_lines([kit.make_event()]))
                await wait_until(lambda c=count: len(list((shared / "xml").glob("*.xml"))) == c, what="a document")
            names = sorted(path.name for path in (shared / "xml").glob("*.xml"))
            await wait_until(lambda: retention_logs(caplog, logging.WARNING), what="the warning")
            assert sorted(path.name for path in (shared / "xml").glob("*.xml")) == names  # the sink is down
            assert service.retention.total_bytes > settings.retention_bytes

            sink.outage = None
            await wait_until(
                lambda: [path.name for path in (shared / "xml").glob("*.xml")] == names[-1:],
                what="retention once the sink is back",
            )
            metrics = (await get(service, "/metrics")).text
    taken = {request.headers["x-loginpod-document"] for request in sink.accepted}
    assert set(names[:-1]) <= taken  # only what the sink took was deleted
    assert "loginpod_adapter_documents_deleted_total 3.0" in metrics
    size = (shared / "xml" / names[-1]).stat().st_size
    assert f"loginpod_adapter_xml_bytes {float(size)}" in metrics
    assert retention_logs(caplog, logging.INFO) == ["retention resumed"]
    assert len(retention_logs(caplog, logging.WARNING)) == 1


def retention_logs(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "adapter.retention" and r.levelno == level]
