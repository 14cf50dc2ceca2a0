"""The signal stage: one pass of the strategy over a market-data run, plus stop-loss exits."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.config import Settings
from app.domain import market as dm
from app.domain.portfolio import mark_to_market
from app.domain.risk import RiskLimits, stop_loss_exits
from app.domain.strategies import StrategyContext, get_strategy
from app.domain.trading import PortfolioState, Position, Signal
from app.events import validate
from app.extensions import Database
from app.models import Kline, Portfolio, PositionRecord, SignalRecord, TickerSnapshot
from app.services.market_data import kline_limit
from app.services.stages import check_stage_message, load_run
from app.services.store import upsert

log = logging.getLogger(__name__)


def signal_payload(signal: Signal) -> dict[str, Any]:
    return {
        "symbol": signal.symbol,
        "direction": str(signal.direction),
        "size": format(signal.size, "f"),
        "signal_strength": format(signal.signal_strength, "f"),
        "timestamp": signal.timestamp.isoformat(),
        "price": format(signal.price, "f"),
        "reason": signal.reason,
        "is_exit": signal.is_exit,
    }


def run_signals(
    db: Database,
    settings: Settings,
    run_id: int,
    clock: Callable[[], datetime],
    task_id: str | None = None,
) -> list[int]:
    """Evaluate the strategy for the run's symbols and held positions; returns signal ids.

    Idempotent: a signal exists at most once per run and symbol.
    """
    check_stage_message(run_id)
    now = clock()
    with db.transaction() as session:
        run = load_run(session, run_id)
        portfolio = session.scalar(select(Portfolio).where(Portfolio.name == "default"))
        held = {
            r.symbol: Position(r.symbol, r.qty, r.avg_entry, r.last_price)
            for r in session.scalars(select(PositionRecord))
        }
        symbols = list(dict.fromkeys([*run.stored_symbols, *held]))
        tickers = {
            t.symbol: t.last_price
            for t in session.scalars(
                select(TickerSnapshot).where(
                    TickerSnapshot.run_id == run_id, TickerSnapshot.symbol.in_(symbols)
                )
            )
        }
        klines = {s: _recent_klines(session, s, settings) for s in run.stored_symbols}

    cash = portfolio.cash if portfolio else settings.initial_capital
    state = mark_to_market(PortfolioState(cash=cash, positions=held), tickers)
    signals: dict[str, Signal] = {
        s.symbol: s
        for s in stop_loss_exits(state, tickers, RiskLimits.from_settings(settings), now)
    }
    strategy = get_strategy(settings.strategy)
    for symbol in run.stored_symbols:
        if symbol in signals or symbol not in tickers:
            continue
        signal = strategy.evaluate(
            StrategyContext(
                symbol=symbol,
                klines=klines[symbol],
                ticker_price=tickers[symbol],
                now=now,
                position=state.positions.get(symbol),
                equity=state.equity,
                max_position_pct=settings.max_position_pct,
                lookback_minutes=settings.lookback_minutes,
                interval=settings.interval,
            )
        )
        if signal is not None:
            signals[symbol] = signal

    rows = []
    for signal in signals.values():
        validate("signal", signal_payload(signal))
        rows.append(_row(signal, run_id, settings.strategy, task_id))
    with db.transaction() as session:
        upsert(session, SignalRecord, rows, ["run_id", "symbol"], update=False)
        ids = list(
            session.scalars(
                select(SignalRecord.id)
                .where(SignalRecord.run_id == run_id)
                .order_by(SignalRecord.id)
            )
        )
    log.info("signals generated", extra={"run_id": run_id, "signals": len(ids)})
    return ids


def _recent_klines(session: Any, symbol: str, settings: Settings) -> list[dm.Kline]:
    rows = session.scalars(
        select(Kline)
        .where(Kline.symbol == symbol, Kline.interval == settings.interval)
        .order_by(Kline.open_time.desc())
        .limit(kline_limit(settings.interval, settings.lookback_minutes))
    ).all()
    return [
        dm.Kline(
            r.open_time, r.open, r.high, r.low, r.close, r.volume, r.close_time, r.quote_volume
        )
        for r in reversed(rows)
    ]


def _row(signal: Signal, run_id: int, strategy: str, task_id: str | None) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "symbol": signal.symbol,
        "strategy": "risk.stop_loss" if signal.reason.startswith("stop-loss") else strategy,
        "direction": str(signal.direction),
        "size": signal.size,
        "signal_strength": signal.signal_strength,
        "price": signal.price,
        "is_exit": signal.is_exit,
        "reason": signal.reason,
        "timestamp": signal.timestamp,
        "task_id": task_id,
    }
