"""The sidecar's Prometheus metrics, in a registry of their own (one per service instance, so tests can run
several in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

PREFIX = "loginpod_sidecar"


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self.events_read = Counter(
            f"{PREFIX}_events_read", "Complete lines read from the source, valid or not.", registry=registry
        )
        self.events_written = Counter(
            f"{PREFIX}_events_written", "Events appended (and fsynced) to the events/ segments.", registry=registry
        )
        self.deadletter = Counter(
            f"{PREFIX}_deadletter",
            "Records written to deadletter/login-sidecar.jsonl, by reason: invalid_json, not_an_object, "
            "line_too_long, incomplete_line (source lines); sink_rejected (events of a batch refused with 4xx).",
            ["reason"],
            registry=registry,
        )
        self.duplicates_skipped = Counter(
            f"{PREFIX}_duplicates_skipped",
            "Source lines not written again because a crash left them in events/ past the checkpoint.",
            registry=registry,
        )
        self.truncations = Counter(
            f"{PREFIX}_truncations", "Times the source file was found truncated in place.", registry=registry
        )
        self.rotations = Counter(
            f"{PREFIX}_rotations", "Times a finished source file was left for the next one.", registry=registry
        )
        self.events_lost_bytes = Counter(
            f"{PREFIX}_events_lost_bytes",
            "Bytes of source files the webserver deleted before they were read (the rotation ledger's gaps); "
            "each is logged as an ERROR.",
            registry=registry,
        )
        self.write_errors = Counter(
            f"{PREFIX}_write_errors",
            "Failed attempts to write events/, the dead letters or the checkpoint (retried).",
            registry=registry,
        )
        self.source_lag_bytes = Gauge(
            f"{PREFIX}_source_lag_bytes", "Bytes of the source files not yet written to events/.", registry=registry
        )
        self.last_write = Gauge(
            f"{PREFIX}_last_write_timestamp_seconds",
            "Unix time of the last batch written and checkpointed.",
            registry=registry,
        )
        self.events_shipped = Counter(f"{PREFIX}_events_shipped", "Events the sink accepted (2xx).", registry=registry)
        self.ship_batches = Counter(
            f"{PREFIX}_ship_batches",
            "Batches finished, by result: delivered (2xx) or rejected (other 4xx, dead-lettered).",
            ["result"],
            registry=registry,
        )
        self.ship_retries = Counter(
            f"{PREFIX}_ship_retries",
            "Failed delivery attempts that will be retried, by reason.",
            ["reason"],
            registry=registry,
        )
        self.ship_duplicates_sent = Counter(
            f"{PREFIX}_ship_duplicates_sent",
            "Events sent again after an attempt whose answer was lost (the sink may have taken them): at most "
            "this many duplicates at a receiver that does not drop repeats by Idempotency-Key or event_id.",
            registry=registry,
        )
        self.ship_lag_events = Gauge(
            f"{PREFIX}_ship_lag_events", "Events in events/ not yet shipped (0 without SINK_URL).", registry=registry
        )
        self.last_ship = Gauge(
            f"{PREFIX}_last_ship_timestamp_seconds",
            "Unix time of the last batch the sink accepted.",
            registry=registry,
        )
        self.watcher_running = Gauge(
            f"{PREFIX}_watcher_running",
            "1 while the file watcher (inotify) wakes the tailer; 0: only the POLL_INTERVAL_MS poll finds new lines.",
            registry=registry,
        )
        self.segments_deleted = Counter(
            f"{PREFIX}_segments_deleted",
            "Closed segments deleted once every consumer was past them.",
            registry=registry,
        )
        for reason in ("invalid_json", "not_an_object", "line_too_long", "incomplete_line", "sink_rejected"):
            self.deadletter.labels(reason)
        for result in ("delivered", "rejected"):
            self.ship_batches.labels(result)
