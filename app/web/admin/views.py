"""Read-only pages: dashboard, positions, orders, fills, signals, an order's trace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import abort, current_app, render_template, request

from app.services import admin_queries, queries
from app.services.market_view import newest_data_time
from app.web.admin import bp, read_session
from app.web.admin.charts import bar_chart, line_chart
from app.web.health import check_broker_side

CURVE_RANGES = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
PNL_DAYS = 30
WORKER_PING_SEC = 0.5


def page_number() -> int:
    return max(1, request.args.get("page", 1, type=int) or 1)


@bp.get("/")
def dashboard() -> str:
    settings = current_app.extensions["settings"]
    session = read_session()
    now = datetime.now(UTC)
    curve_range = request.args.get("range", "7d")
    if curve_range not in CURVE_RANGES:
        curve_range = "7d"
    data_time = newest_data_time(session)
    broker = check_broker_side(settings, current_app.extensions["celery"], WORKER_PING_SEC)
    return render_template(
        "admin/dashboard.html",
        summary=queries.portfolio_summary(session, now),
        curve=line_chart(admin_queries.equity_curve(session, now - CURVE_RANGES[curve_range], now)),
        pnl=bar_chart(admin_queries.daily_pnl(session, now - timedelta(days=PNL_DAYS))),
        curve_range=curve_range,
        curve_ranges=list(CURVE_RANGES),
        data_age=None if data_time is None else (now - data_time).total_seconds(),
        stale_after=settings.data_stale_timeout_sec,
        last_run=admin_queries.newest_run(session),
        workers=broker["workers"],
        flower_url=settings.flower_url or f"http://127.0.0.1:{settings.flower_port}",
    )


@bp.get("/positions")
def positions() -> str:
    summary = queries.portfolio_summary(read_session(), datetime.now(UTC))
    return render_template("admin/positions.html", summary=summary)


@bp.get("/orders")
def orders() -> str:
    page = admin_queries.orders_page(read_session(), page_number())
    return render_template("admin/orders.html", page=page)


@bp.get("/orders/<int:order_id>")
def trace(order_id: int) -> str:
    found = queries.trace(read_session(), order_id)
    if found is None:
        abort(404, f"no order {order_id}")
    return render_template("admin/trace.html", trace=found)


@bp.get("/fills")
def fills() -> str:
    page = admin_queries.fills_page(read_session(), page_number())
    return render_template("admin/fills.html", page=page)


@bp.get("/signals")
def signals() -> str:
    page = admin_queries.signals_page(read_session(), page_number())
    return render_template("admin/signals.html", page=page)
