"""What the trading commands print: prices and quantities at the symbol's precision, money in
USDT to the cent (`_usdt` keys), every `_pct` key in percent (1.5 means 1.5 %), times as
2026-11-30T01:52:02Z. With `exact`, money and amounts are the stored exact values."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from app.format import (
    PCT_JSON_PLACES,
    Precision,
    at_precision,
    json_values,
    money,
    percent,
    plain,
)
from app.services.decisions import Decision, RunSummary

Precisions = Mapping[str, Precision]


class Shape:
    """Formats numbers for one command's output."""

    def __init__(self, precisions: Precisions, exact: bool) -> None:
        self.precisions = precisions
        self.exact = exact

    def of(self, symbol: str) -> Precision:
        return self.precisions.get(symbol, Precision())

    def usdt(self, value: Decimal | None) -> str | None:
        if value is None:
            return None
        return plain(value) if self.exact else money(value)

    def price(self, symbol: str, value: Decimal | None) -> str | None:
        if value is None:
            return None
        return plain(value) if self.exact else at_precision(value, self.of(symbol).price)

    def qty(self, symbol: str, value: Decimal | None) -> str | None:
        if value is None:
            return None
        return plain(value) if self.exact else at_precision(value, self.of(symbol).qty)

    def pct(self, fraction: Decimal | None) -> str | None:
        if fraction is None:
            return None
        return percent(fraction, None if self.exact else PCT_JSON_PLACES)

    def values(self, symbol: str, values: Mapping[str, Any]) -> dict[str, Any]:
        return json_values(values, self.of(symbol), self.exact)


def portfolio(summary: dict[str, Any], shape: Shape) -> dict[str, Any]:
    return {
        "account_id": summary["account_id"],
        "account": summary["account"],
        "active": summary["active"],
        "opened_at": summary["opened_at"],
        "closed_at": summary["closed_at"],
        "cash_usdt": shape.usdt(summary["cash"]),
        "equity_usdt": shape.usdt(summary["equity"]),
        "exposure_usdt": shape.usdt(summary["exposure"]),
        "exposure_pct": shape.pct(summary["exposure_pct"]),
        "initial_capital_usdt": shape.usdt(summary["initial_capital"]),
        "realized_pnl_usdt": shape.usdt(summary["realized_pnl"]),
        "unrealized_pnl_usdt": shape.usdt(summary["unrealized_pnl"]),
        "fees_paid_usdt": shape.usdt(summary["fees_paid"]),
        "day": summary["day"],
        "day_start_equity_usdt": shape.usdt(summary["day_start_equity"]),
        "daily_pnl_usdt": shape.usdt(summary["daily_pnl"]),
        "daily_drawdown_pct": shape.pct(summary["daily_drawdown_pct"]),
        "halted": summary["halted"],
        "halt_reason": summary["halt_reason"],
        "paused": summary["paused"],
        "circuit_breaker_until": summary["circuit_breaker_until"],
        "stale_paused": summary["stale_paused"],
        "positions": [
            {
                "symbol": p["symbol"],
                "qty": shape.qty(p["symbol"], p["qty"]),
                "avg_entry": shape.price(p["symbol"], p["avg_entry"]),
                "last_price": shape.price(p["symbol"], p["last_price"]),
                "stop_price": shape.price(p["symbol"], p["stop_price"]),
                "market_value_usdt": shape.usdt(p["market_value"]),
                "unrealized_pnl_usdt": shape.usdt(p["unrealized_pnl"]),
            }
            for p in summary["positions"]
        ],
    }


def order(row: dict[str, Any], shape: Shape) -> dict[str, Any]:
    symbol = row["symbol"]
    fill = row["fill"]
    return {
        "order_id": row["order_id"],
        "client_order_id": row["client_order_id"],
        "account_id": row["account_id"],
        "symbol": symbol,
        "side": row["side"],
        "status": row["status"],
        "reject_reason": row["reject_reason"],
        "created_at": row["created_at"],
        "requested_qty": shape.qty(symbol, row["size"]),
        "estimated_price": shape.price(symbol, row["est_price"]),
        "estimated_notional_usdt": shape.usdt(row["size"] * row["est_price"]),
        "filled_qty": shape.qty(symbol, fill["qty"]) if fill else None,
        "fill_price": shape.price(symbol, fill["price"]) if fill else None,
        "notional_usdt": shape.usdt(fill["notional"]) if fill else None,
        "fee_usdt": shape.usdt(fill["fee"]) if fill else None,
        "realized_pnl_usdt": shape.usdt(fill["realized_pnl"]) if fill else None,
        "filled_at": fill["filled_at"] if fill else None,
    }


def trace(found: dict[str, Any], shape: Shape) -> dict[str, Any]:
    o, signal, md, risk, fill = (
        found["order"],
        found["signal"],
        found["market_data"],
        found["risk"],
        found["fill"],
    )
    symbol = o["symbol"]
    ticker, book = md["ticker"], md["book"]
    return {
        "order": {
            "order_id": o["order_id"],
            "client_order_id": o["client_order_id"],
            "account_id": o["account_id"],
            "symbol": symbol,
            "side": o["side"],
            "requested_qty": shape.qty(symbol, o["size"]),
            "status": o["status"],
            "reject_reason": o["reject_reason"],
            "approved_by": o["approved_by"],
            "created_at": o["created_at"],
        },
        "signal": {
            "signal_id": signal["signal_id"],
            "strategy": signal["strategy"],
            "direction": signal["direction"],
            "qty": shape.qty(symbol, signal["size"]),
            "signal_strength": plain(signal["signal_strength"]),
            "price": shape.price(symbol, signal["price"]),
            "reason": signal["reason"],
            "is_exit": signal["is_exit"],
            "timestamp": signal["timestamp"],
        },
        "market_data": {
            "run_id": md["run_id"],
            "run_started_at": md["run_started_at"],
            "run_status": md["run_status"],
            "ticker": None
            if ticker is None
            else {
                "last_price": shape.price(symbol, ticker["last_price"]),
                "bid": shape.price(symbol, ticker["bid"]),
                "ask": shape.price(symbol, ticker["ask"]),
                "price_change_24h_pct": shape.pct(
                    None if ticker["price_change_pct"] is None else ticker["price_change_pct"] / 100
                ),
                "quote_volume_usdt": shape.usdt(ticker["quote_volume"]),
                "close_time": ticker["close_time"],
            },
            "book": None
            if book is None
            else {
                "best_bid": shape.price(symbol, book["best_bid"]),
                "best_ask": shape.price(symbol, book["best_ask"]),
                "bids": [_level(shape, symbol, level) for level in book["bids"]],
                "asks": [_level(shape, symbol, level) for level in book["asks"]],
                "fetched_at": book["fetched_at"],
            },
        },
        "risk": {
            "decision_id": risk["decision_id"],
            "approved": risk["approved"],
            "approved_qty": shape.qty(symbol, risk["size"]),
            "stop_price": shape.price(symbol, risk["stop_price"]),
            "decided_at": risk["decided_at"],
            "layers": [
                {
                    "layer": layer["layer"],
                    "name": layer["name"],
                    "passed": layer["passed"],
                    "action": layer["action"],
                    "values": shape.values(symbol, layer["values"]),
                }
                for layer in risk["layers"]
            ],
        },
        "fill": None
        if fill is None
        else {
            "fill_id": fill["fill_id"],
            "qty": shape.qty(symbol, fill["qty"]),
            "price": shape.price(symbol, fill["price"]),
            "notional_usdt": shape.usdt(fill["notional"]),
            "fee_usdt": shape.usdt(fill["fee"]),
            "slippage_pct": shape.pct(fill["slippage_pct"]),
            "realized_pnl_usdt": shape.usdt(fill["realized_pnl"]),
            "filled_at": fill["filled_at"],
        },
        "task_ids": found["task_ids"],
        "task_runs_recorded": found["task_runs_recorded"],
    }


def _level(shape: Shape, symbol: str, level: list[str]) -> dict[str, str | None]:
    price, qty = (Decimal(x) for x in level)
    return {"price": shape.price(symbol, price), "qty": shape.qty(symbol, qty)}


def decision(d: Decision, shape: Shape) -> dict[str, Any]:
    symbol = d.symbol
    out: dict[str, Any] = {
        "run_id": d.run_id,
        "symbol": symbol,
        "evaluated_at": d.evaluated_at,
        "outcome": d.outcome,
        "summary": d.summary,
        "reason": d.reason,
        "values": shape.values(symbol, d.values),
    }
    if d.signal_id is not None:
        out["signal"] = {
            "signal_id": d.signal_id,
            "direction": d.direction,
            "qty": shape.qty(symbol, d.signal_size),
            "approved": d.approved,
            "rejected_by": d.rejected_by,
            "approved_qty": shape.qty(symbol, d.approved_size),
            "order_id": d.order_id,
            "order_status": d.order_status,
            "reject_reason": d.reject_reason,
            "filled_qty": shape.qty(symbol, d.fill_qty),
            "fill_price": shape.price(symbol, d.fill_price),
            "notional_usdt": shape.usdt(d.fill_notional),
        }
    return out


def run_summary(summary: RunSummary, shape: Shape) -> dict[str, Any]:
    return {
        "run_id": summary.run_id,
        "status": summary.status,
        "trigger": summary.trigger,
        "started_at": summary.started_at,
        "error": summary.error,
        "summary": summary.text,
        "screened": summary.screened,
        "stored": summary.stored,
        "market_data_rejections": summary.market_rejections,
        "decisions": [decision(d, shape) for d in summary.decisions],
    }


def stats(found: dict[str, Any], exact: bool, limit: int) -> dict[str, Any]:
    shape = Shape({}, exact)
    curve = found["equity_curve"]
    win_rate = found["win_rate"]
    return {
        "account_id": found["account_id"],
        "trades_per_day": found["trades_per_day"],
        "avg_signal_to_order_seconds": found["avg_signal_to_order_seconds"],
        "closed_trades": found["closed_trades"],
        "win_rate_pct": None if win_rate is None else shape.pct(win_rate),
        "equity_points": len(curve),
        "equity_curve": [
            {
                "taken_at": p["taken_at"],
                "equity_usdt": shape.usdt(p["equity"]),
                "run_id": p["run_id"],
            }
            for p in curve[-limit:]
        ],
    }


def account(summary: dict[str, Any] | None, exact: bool) -> dict[str, Any] | None:
    if summary is None:
        return None
    shape = Shape({}, exact)
    money_keys = (
        "initial_capital",
        "cash",
        "positions_value",
        "equity",
        "realized_pnl",
        "fees_paid",
    )
    return {
        (f"{key}_usdt" if key in money_keys else key): (
            shape.usdt(value) if key in money_keys else value
        )
        for key, value in summary.items()
    }
