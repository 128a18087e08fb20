"""The ambassador's Prometheus metrics, counted in plain ints and rendered only when scraped.

prometheus_client's Counter.labels().inc() plus Histogram.observe() plus a Gauge cost about 5 us per
request on our cores (label lookups, a lock per value); these dict and list updates cost about 0.3 us.
Everything runs on the event loop's thread, scrapes included, so no lock is needed.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

PREFIX = "loginpod_ambassador_"
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Label values for the method: anything else is "OTHER", so clients cannot grow the series without bound.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics(Collector):
    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.duration_counts = [0] * (len(DURATION_BUCKETS) + 1)
        self.duration_sum = 0.0
        self.upstream_errors: dict[str, int] = {}
        self.rate_limited = 0
        self.in_flight = 0
        self.registry = registry if registry is not None else CollectorRegistry()
        self.registry.register(self)

    def request_done(self, method: str, status: int, seconds: float) -> None:
        key = (method if method in METHODS else "OTHER", status)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        self.duration_counts[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.duration_sum += seconds

    def upstream_error(self, kind: str) -> None:
        self.upstream_errors[kind] = self.upstream_errors.get(kind, 0) + 1

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            PREFIX + "requests", "Requests answered, by method and status.", labels=("method", "status")
        )
        for (method, status), count in sorted(self.requests.items()):
            requests.add_metric((method, str(status)), count)
        yield requests

        cumulative, buckets = 0, []
        for bound, count in zip((*DURATION_BUCKETS, float("inf")), self.duration_counts, strict=True):
            cumulative += count
            buckets.append((_le(bound), cumulative))
        yield HistogramMetricFamily(
            PREFIX + "request_duration_seconds",
            "Time from the request's head to the end of the response, in seconds.",
            buckets=buckets,
            sum_value=self.duration_sum,
        )

        errors = CounterMetricFamily(
            PREFIX + "upstream_errors", "Requests the upstream did not answer, by kind.", labels=("kind",)
        )
        for kind, count in sorted(self.upstream_errors.items()):
            errors.add_metric((kind,), count)
        yield errors

        yield CounterMetricFamily(
            PREFIX + "rate_limited", "Login requests refused with 429 by the rate limiter.", value=self.rate_limited
        )
        yield GaugeMetricFamily(PREFIX + "in_flight_requests", "Requests being handled now.", value=self.in_flight)


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
