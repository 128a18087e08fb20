"""The adapter's Prometheus metrics, in a registry of their own (one per service instance, so tests can run
several in one process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

PREFIX = "loginpod_adapter"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        registry = self.registry
        self.events_converted = Counter(
            f"{PREFIX}_events_converted", "Events written into XML documents.", registry=registry
        )
        self.documents_written = Counter(f"{PREFIX}_documents_written", "XML documents written.", registry=registry)
        self.deadletter = Counter(
            f"{PREFIX}_deadletter", "Lines written to deadletter/adapter.jsonl (not a JSON object).", registry=registry
        )
        self.dropped_keys = Counter(
            f"{PREFIX}_dropped_keys", "Keys of events that the XSD does not know, left out.", registry=registry
        )
        self.sanitized_values = Counter(
            f"{PREFIX}_sanitized_values",
            "Values changed to fit the XSD: forbidden characters replaced, truncated, or a non-string as text.",
            registry=registry,
        )
        self.lag_bytes = Gauge(f"{PREFIX}_lag_bytes", "Bytes in events/ not yet converted.", registry=registry)
        self.convert_seconds = Histogram(
            f"{PREFIX}_convert_seconds",
            "Time to convert one batch: parse, sanitize, render, write the document and the checkpoint.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry,
        )
        self.documents_shipped = Counter(
            f"{PREFIX}_documents_shipped", "XML documents the sink accepted (2xx).", registry=registry
        )
        self.documents_rejected = Counter(
            f"{PREFIX}_documents_rejected", "XML documents the sink refused for good (4xx).", registry=registry
        )
        self.documents_deleted = Counter(
            f"{PREFIX}_documents_deleted", "XML documents deleted to keep XML_RETENTION_BYTES.", registry=registry
        )
        self.xml_bytes = Gauge(f"{PREFIX}_xml_bytes", "Total size of the XML documents in xml/.", registry=registry)
        self.ship_retries = Counter(
            f"{PREFIX}_ship_retries", "Failed delivery attempts that will be retried.", ["reason"], registry=registry
        )

    def track_lag(self, lag: Callable[[], float]) -> None:
        self.lag_bytes.set_function(lag)
