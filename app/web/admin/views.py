"""Read-only pages: dashboard, positions, orders, fills, signals, an order's trace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from flask import abort, current_app, render_template
from sqlalchemy.orm import Session

from app.format import money_text, percent_text, show_all
from app.models import Portfolio
from app.services import admin_queries, queries
from app.services.decisions import run_summary
from app.services.market_view import newest_data_time
from app.web.admin import bp, precisions_of, read_session
from app.web.admin.charts import bar_chart, line_chart
from app.web.admin.params import choice_arg, id_arg, page_number
from app.web.health import FIRST_WAIT_SEC, latest_checks

CURVE_RANGES = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
PNL_DAYS = 30
MIN_SPAN_OF_CAPITAL = Decimal("0.01")  # a chart's y axis spans at least 1 % of the account
DRAWDOWN_MIN_SPAN = Decimal(1)  # percentage points


def chosen_account(session: Session) -> Portfolio | None:
    """?account=ID (404 when there is no such account), else the active account."""
    account_id = id_arg("account")
    account = queries.find_account(session, account_id)
    if account_id is not None and account is None:
        abort(404, f"no paper account {account_id}: the controls page lists them")
    return account


def account_context(session: Session) -> dict:
    account = chosen_account(session)
    return {"account": account, "accounts": admin_queries.accounts(session)}


@bp.get("/")
def dashboard() -> str:
    settings = current_app.extensions["settings"]
    session = read_session()
    now = datetime.now(UTC)
    curve_range = choice_arg("range", tuple(CURVE_RANGES), "7d")
    assert curve_range is not None
    chosen = account_context(session)
    account: Portfolio | None = chosen["account"]
    account_id = account.id if account else None
    summary = queries.portfolio_summary(session, now, account_id) if account else None
    end = account.closed_at if account and account.closed_at else now  # a closed account's end
    since = end - CURVE_RANGES[curve_range]

    capital = account.initial_capital if account else settings.initial_capital
    level = max(capital, summary["equity"]) if summary else capital
    min_span = level * MIN_SPAN_OF_CAPITAL
    curve = line_chart(
        admin_queries.equity_curve(session, since, end, account_id=account_id),
        unit="USDT",
        min_span=min_span,
        marks=[(capital, f"start {money_text(capital)}")],
    )
    limit = settings.max_daily_drawdown_pct
    drawdown = line_chart(
        [
            (when, -fraction * 100)
            for when, fraction in admin_queries.drawdown_curve(
                session, since, end, account_id=account_id
            )
        ],
        unit="%",
        min_span=DRAWDOWN_MIN_SPAN,
        include=[Decimal(0), -limit * 100],
        marks=[(-limit * 100, f"halt at {percent_text(limit)} (MAX_DAILY_DRAWDOWN_PCT)")],
    )
    pnl = bar_chart(
        admin_queries.daily_pnl(session, end - timedelta(days=PNL_DAYS), account_id=account_id),
        unit="USDT",
        min_span=min_span,
    )

    last = run_summary(session)
    newest = admin_queries.newest_run(session)
    failed = (
        newest
        if newest is not None
        and newest.status == "failed"
        and (last is None or newest.id != last.run_id)
        else None
    )
    data_time = newest_data_time(session)
    # The health monitor's newest gathering: no worker ping per (auto-refreshed) page view.
    checks = latest_checks(FIRST_WAIT_SEC)
    workers = (
        checks.checks["workers"]
        if checks is not None
        else {"status": "fail", "detail": "not checked yet", "count": 0}
    )
    return render_template(
        "admin/dashboard.html",
        summary=summary,
        curve=curve,
        drawdown=drawdown,
        pnl=pnl,
        curve_range=curve_range,
        curve_ranges=list(CURVE_RANGES),
        data_age=None if data_time is None else (now - data_time).total_seconds(),
        stale_after=settings.data_stale_timeout_sec,
        last=last,
        failed=failed,
        workers=workers,
        workers_age=checks.age() if checks is not None else None,
        flower_url=settings.flower_url or f"http://127.0.0.1:{settings.flower_port}",
        **chosen,
    )


@bp.get("/positions")
def positions() -> str:
    session = read_session()
    chosen = account_context(session)
    account = chosen["account"]
    summary = queries.portfolio_summary(session, datetime.now(UTC), account.id) if account else None
    symbols = [p["symbol"] for p in summary["positions"]] if summary else []
    return render_template(
        "admin/positions.html",
        summary=summary,
        prec=precisions_of(session, symbols),
        **chosen,
    )


@bp.get("/orders")
def orders() -> str:
    session = read_session()
    chosen = account_context(session)
    account = chosen["account"]
    page = admin_queries.orders_page(
        session, page_number(), account_id=account.id if account else None
    )
    return render_template(
        "admin/orders.html",
        page=page,
        prec=precisions_of(session, [order.symbol for order, _ in page.items]),
        **chosen,
    )


@bp.get("/orders/<id:order_id>")
def trace(order_id: int) -> str:
    session = read_session()
    found = queries.trace(session, order_id)
    if found is None:
        abort(404, f"no order {order_id}")
    symbol = found["order"]["symbol"]
    prec = precisions_of(session, [symbol])[symbol]
    evaluation = admin_queries.evaluation(session, found["market_data"]["run_id"], symbol)
    layers = [
        {**layer, "shown": show_all(layer.get("values") or {}, prec)}
        for layer in found["risk"]["layers"]
    ]
    return render_template(
        "admin/trace.html",
        trace=found,
        p=prec,
        layers=layers,
        evaluation=evaluation,
        evaluation_values=show_all(evaluation.values, prec) if evaluation else [],
    )


@bp.get("/fills")
def fills() -> str:
    session = read_session()
    chosen = account_context(session)
    account = chosen["account"]
    page = admin_queries.fills_page(
        session, page_number(), account_id=account.id if account else None
    )
    return render_template(
        "admin/fills.html",
        page=page,
        prec=precisions_of(session, [fill.symbol for fill, _ in page.items]),
        **chosen,
    )


@bp.get("/signals")
def signals() -> str:
    session = read_session()
    page = admin_queries.signals_page(session, page_number())
    prec = precisions_of(session, [signal.symbol for signal, _, _ in page.items])
    items = [
        (
            signal,
            decision,
            order_id,
            [
                {**layer, "shown": show_all(layer.get("values") or {}, prec[signal.symbol])}
                for layer in (decision.verdicts if decision else [])
            ],
        )
        for signal, decision, order_id in page.items
    ]
    return render_template("admin/signals.html", page=page, items=items, prec=prec)
