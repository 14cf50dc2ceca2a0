"""/metrics: prometheus-flask-exporter's HTTP metrics plus the cdb_ pipeline figures.

Each app gets its own CollectorRegistry, so create_app() can run any number of times in
one process (tests do) without "Duplicated timeseries" errors from the global registry.
Under a multi-process server with PROMETHEUS_MULTIPROC_DIR set, the HTTP metrics of all
processes are merged from that folder; the cdb_ figures come from the database either way.
"""

from __future__ import annotations

import os

from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_flask_exporter import PrometheusMetrics

from app.extensions import db
from app.services.metrics import PipelineCollector
from app.services.stream_metrics import StreamCollector

bp = Blueprint("metrics", __name__)

REGISTRY_KEY = "metrics_registry"


def _multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def init_metrics(app: Flask) -> PrometheusMetrics:
    registry = CollectorRegistry()
    exporter = PrometheusMetrics(
        app,
        path=None,  # served by the view below, so the cdb_ collector is always included
        registry=registry,
        group_by="endpoint",  # bounded label values: one per route, not per URL
        excluded_paths=["^/metrics$"],
    )
    app.extensions[REGISTRY_KEY] = registry
    app.extensions["pipeline_collector"] = PipelineCollector(db, app.extensions["settings"])
    app.extensions["stream_collector"] = StreamCollector(app.extensions["settings"])
    registry.register(app.extensions["pipeline_collector"])
    registry.register(app.extensions["stream_collector"])
    app.register_blueprint(bp)
    return exporter


@bp.get("/metrics")
def metrics() -> Response:
    registry = current_app.extensions[REGISTRY_KEY]
    if _multiprocess():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(current_app.extensions["pipeline_collector"])
        registry.register(current_app.extensions["stream_collector"])
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encoder(registry), headers={"Content-Type": content_type})
