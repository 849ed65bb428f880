"""Prometheus metrics: query counts and latency, and per-camera ingest state read at scrape time."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from pipeline.alerts.alert_store import AlertStats
from pipeline.store.registry import CameraReport


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.queries = Counter("omnisift_queries", "Queries answered", ["answer_source"], registry=self.registry)
        self.query_seconds = Histogram(
            "omnisift_query_seconds",
            "Query latency",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )

        def per_camera(name: str, documentation: str) -> Gauge:
            return Gauge(name, documentation, ["camera_id"], registry=self.registry)

        self.lag = per_camera("omnisift_camera_lag_seconds", "Newest stored clip behind live")
        self.connected = per_camera("omnisift_camera_connected", "1 while the source is connected")
        self.stored = per_camera("omnisift_camera_clips_stored", "Clips stored since ingest started")
        self.dropped = per_camera("omnisift_camera_clips_dropped", "Live clips dropped as gaps")
        self.reconnects = per_camera("omnisift_camera_reconnects", "Source reconnects")
        self.bytes = per_camera("omnisift_camera_stored_bytes", "Anchor-store bytes held")
        self.alert_gauges = {
            what: Gauge(name, documentation, registry=self.registry)
            for what, name, documentation in (
                ("rules", "omnisift_alert_rules", "Alert rules"),
                ("firings", "omnisift_alert_firings", "Alert firings recorded"),
                ("pending", "omnisift_alert_outbox_pending", "Firings awaiting webhook delivery"),
                ("dead", "omnisift_alert_dead_letters", "Firings dead-lettered after their last attempt"),
            )
        }

    def observe_query(self, answer_source: str, seconds: float) -> None:
        self.queries.labels(answer_source).inc()
        self.query_seconds.observe(seconds)

    def observe_alerts(self, stats: AlertStats) -> None:
        for what, gauge in self.alert_gauges.items():
            gauge.set(getattr(stats, what))

    def render(self, reports: Mapping[str, CameraReport], stored_bytes: Mapping[str, int]) -> tuple[bytes, str]:
        for gauge in (self.lag, self.connected, self.stored, self.dropped, self.reconnects, self.bytes):
            gauge.clear()
        for camera_id, report in reports.items():
            if report.lag_s is not None:
                self.lag.labels(camera_id).set(report.lag_s)
            self.connected.labels(camera_id).set(1 if report.connected else 0)
            self.stored.labels(camera_id).set(report.stored_clips)
            self.dropped.labels(camera_id).set(report.dropped_clips)
            self.reconnects.labels(camera_id).set(report.reconnects)
        for camera_id, size in stored_bytes.items():
            self.bytes.labels(camera_id).set(size)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
