"""The audit: what must exist against what does, counted in the database.

- every finished market-data run reached execution (`execution_done_at`); none left
  `running`; a run the reconciler gave up counts as lost unless the scenario expects it;
- every order filled, rejected, expired or cancelled, with a reason when not filled; a fill
  for every filled order and for no other;
- nothing doubled, by counting: signals and evaluations per (run, symbol), decisions and
  orders per signal, fills per order, snapshots per (account, run), runs per key, tickers
  and books per (run, symbol); alerts per (run, source, code, symbol, message);
- cash, fees, realised PnL and positions equal to the account's fills replayed through
  app.domain.portfolio.apply_fill from INITIAL_CAPITAL, to the last Decimal unit;
- no fill against data older than DATA_STALE_TIMEOUT_SEC (filled_at minus the time the
  order's book/ticker was current, as execution computes it), and no order or signal made
  from a run whose data was older than that;
- no task run left STARTED or PENDING.

`settle()` is how a scenario ends: beat stopped, the reconciler sent by hand on the beat's
period (it is the same task) until the audit holds or the deadline passes.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import celeryconfig
from app.domain.portfolio import apply_fill, new_portfolio
from app.domain.trading import Fill, Side
from tests.resilience.stack import Stack

FINAL_ORDER_STATES = ("filled", "rejected", "expired", "cancelled")

# (what, SQL returning one row per doubled key with its count `n`)
DOUBLES = {
    "runs per key": "SELECT run_key, count(*) n FROM market_data_runs GROUP BY run_key",
    "signals per run+symbol": "SELECT run_id, symbol, count(*) n FROM signals GROUP BY 1, 2",
    "evaluations per run+symbol": (
        "SELECT run_id, symbol, count(*) n FROM evaluations GROUP BY 1, 2"
    ),
    "decisions per signal": "SELECT signal_id, count(*) n FROM risk_decisions GROUP BY 1",
    "orders per signal": "SELECT signal_id, count(*) n FROM orders GROUP BY 1",
    "orders per client id": "SELECT client_order_id, count(*) n FROM orders GROUP BY 1",
    "fills per order": "SELECT order_id, count(*) n FROM fills GROUP BY 1",
    "snapshots per run": (
        "SELECT portfolio_id, run_id, count(*) n FROM equity_snapshots GROUP BY 1, 2"
    ),
    "tickers per run+symbol": (
        "SELECT run_id, symbol, count(*) n FROM ticker_snapshots GROUP BY 1, 2"
    ),
    "books per run+symbol": "SELECT run_id, symbol, count(*) n FROM book_snapshots GROUP BY 1, 2",
    "alerts per run+message": (
        "SELECT run_id, source, code, symbol, message, count(*) n FROM alerts "
        "WHERE run_id IS NOT NULL GROUP BY 1, 2, 3, 4, 5"
    ),
}


@dataclass
class Audit:
    numbers: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.problems

    def report(self) -> str:
        return "audit: " + ("clean" if self.clean else "\n  ".join(["", *self.problems]))


def audit(stack: Stack, expect_given_up: bool = False) -> Audit:
    result = Audit()
    _runs(stack, result, expect_given_up)
    _orders(stack, result)
    _doubles(stack, result)
    _money(stack, result)
    _stale_fills(stack, result)
    _task_runs(stack, result)
    return result


def _runs(stack: Stack, result: Audit, expect_given_up: bool) -> None:
    runs = stack.rows(
        "SELECT id, status, execution_done_at, chain_note, redrives, error FROM market_data_runs"
    )
    running = [r["id"] for r in runs if r["status"] == "running"]
    finished = [r for r in runs if r["status"] != "running"]
    lost = [r["id"] for r in finished if r["execution_done_at"] is None]
    given_up = [r["id"] for r in runs if r["chain_note"] and "given up" in r["chain_note"]]
    result.numbers.update(
        runs=len(runs),
        runs_executed=len(finished) - len(lost),
        runs_failed=sum(r["status"] == "failed" for r in runs),
        runs_failed_by_reconciler=sum("(reconciler)" in (r["error"] or "") for r in runs),
        runs_redriven=sum(r["redrives"] > 0 for r in runs),
        redrives=sum(r["redrives"] for r in runs),
        runs_left_running=len(running),
        runs_lost=len(lost),
        runs_given_up=len(given_up),
    )
    if running:
        result.problems.append(f"runs left running: {running}")
    if lost:
        result.problems.append(f"finished runs that never reached execution: {lost}")
    if given_up and not expect_given_up:
        result.problems.append(f"runs given up by the reconciler: {given_up}")


def _orders(stack: Stack, result: Audit) -> None:
    orders = stack.rows(
        "SELECT o.id, o.status, o.reject_reason, count(f.id) AS fills FROM orders o "
        "LEFT JOIN fills f ON f.order_id = o.id GROUP BY o.id"
    )
    by_status: dict[str, int] = {}
    for order in orders:
        by_status[order["status"]] = by_status.get(order["status"], 0) + 1
    result.numbers.update(orders=len(orders), orders_by_status=by_status)
    left_new = [o["id"] for o in orders if o["status"] == "new"]
    unknown = [o["id"] for o in orders if o["status"] not in (*FINAL_ORDER_STATES, "new")]
    no_reason = [
        o["id"]
        for o in orders
        if o["status"] in ("rejected", "expired", "cancelled") and not o["reject_reason"]
    ]
    fill_mismatch = [
        o["id"] for o in orders if (o["status"] == "filled") != (o["fills"] == 1) or o["fills"] > 1
    ]
    result.numbers["orders_left_new"] = len(left_new)
    if left_new:
        result.problems.append(f"orders left new: {left_new}")
    if unknown:
        result.problems.append(f"orders in an unknown state: {unknown}")
    if no_reason:
        result.problems.append(f"orders not filled and without a reason: {no_reason}")
    if fill_mismatch:
        result.problems.append(f"orders whose fills do not match their status: {fill_mismatch}")


def _doubles(stack: Stack, result: Audit) -> None:
    doubled = {}
    for what, sql in DOUBLES.items():
        rows = stack.rows(f"SELECT * FROM ({sql}) counted WHERE n > 1")
        if rows:
            doubled[what] = rows[:5]
    result.numbers["doubled"] = sum(len(v) for v in doubled.values())
    for what, rows in doubled.items():
        result.problems.append(f"doubled {what}: {rows}")


def _money(stack: Stack, result: Audit) -> None:
    """Replay every account's fills from its initial capital: the stored account must be
    exactly that."""
    mismatches = []
    checked = 0
    for account in stack.rows("SELECT * FROM portfolios ORDER BY id"):
        state = new_portfolio(account["initial_capital"], account["opened_at"])
        fills = stack.rows(
            "SELECT f.* FROM fills f JOIN orders o ON o.id = f.order_id "
            "WHERE o.portfolio_id = :p ORDER BY f.id",
            p=account["id"],
        )
        for row in fills:
            fill = Fill(
                symbol=row["symbol"],
                side=Side(row["side"]),
                qty=row["qty"],
                avg_price=row["price"],
                notional=row["notional"],
                fee=row["fee"],
                slippage_pct=row["slippage_pct"],
                levels_used=0,
            )
            if row["notional"] != row["qty"] * row["price"]:
                mismatches.append(f"fill {row['id']}: notional {row['notional']} != qty x price")
            state, realized = apply_fill(state, fill)
            if realized != row["realized_pnl"]:
                mismatches.append(
                    f"fill {row['id']}: realised {row['realized_pnl']}, replay {realized}"
                )
            checked += 1
        for name in ("cash", "realized_pnl", "fees_paid"):
            stored, replayed = account[name], getattr(state, name)
            if stored != replayed:
                mismatches.append(
                    f"account {account['id']} {name}: stored {stored}, replayed {replayed} "
                    f"(off by {stored - replayed})"
                )
        stored_positions = {
            r["symbol"]: (r["qty"], r["avg_entry"])
            for r in stack.rows("SELECT * FROM positions WHERE portfolio_id = :p", p=account["id"])
        }
        replayed_positions = {s: (p.qty, p.avg_entry) for s, p in state.positions.items()}
        if stored_positions != replayed_positions:
            mismatches.append(
                f"account {account['id']} positions: stored {stored_positions}, "
                f"replayed {replayed_positions}"
            )
    result.numbers["fills_replayed"] = checked
    result.numbers["money_mismatches"] = len(mismatches)
    result.problems.extend(mismatches[:10])


def _stale_fills(stack: Stack, result: Audit) -> None:
    bound = timedelta(seconds=stack.stale_sec)
    fills = stack.rows(
        "SELECT f.id, f.filled_at, LEAST(t.close_time, b.fetched_at) AS data_time "
        "FROM fills f JOIN orders o ON o.id = f.order_id "
        "LEFT JOIN ticker_snapshots t ON t.run_id = o.run_id AND t.symbol = o.symbol "
        "LEFT JOIN book_snapshots b ON b.run_id = o.run_id AND b.symbol = o.symbol"
    )
    stale = [
        (f["id"], (f["filled_at"] - f["data_time"]).total_seconds())
        for f in fills
        if f["data_time"] is None or f["filled_at"] - f["data_time"] > bound
    ]
    ages = [(f["filled_at"] - f["data_time"]).total_seconds() for f in fills if f["data_time"]]
    result.numbers.update(
        stale_fills=len(stale), oldest_fill_data_s=round(max(ages), 3) if ages else None
    )
    if stale:
        result.problems.append(f"fills against data older than {bound}: {stale[:10]}")
    # Nor decided from it: an order (an approved decision) or a signal made once the run's
    # data (as the stages date it: when the run finished fetching) was older than the bound.
    seconds = stack.stale_sec
    late_orders = stack.rows(
        "SELECT o.id FROM orders o JOIN market_data_runs r ON r.id = o.run_id "
        "WHERE o.created_at - coalesce(r.finished_at, r.started_at) > make_interval(secs => :s)",
        s=seconds,
    )
    late_signals = stack.rows(
        "SELECT s.id FROM signals s JOIN evaluations e ON e.run_id = s.run_id "
        "AND e.symbol = s.symbol JOIN market_data_runs r ON r.id = s.run_id "
        "WHERE e.evaluated_at - coalesce(r.finished_at, r.started_at) > make_interval(secs => :s)",
        s=seconds,
    )
    result.numbers.update(stale_orders=len(late_orders), stale_signals=len(late_signals))
    if late_orders or late_signals:
        result.problems.append(
            f"decided from data older than {bound}: orders {[r['id'] for r in late_orders]}, "
            f"signals {[r['id'] for r in late_signals]}"
        )


def _task_runs(stack: Stack, result: Audit) -> None:
    states = {
        r["state"]: r["n"]
        for r in stack.rows("SELECT state, count(*) n FROM task_runs GROUP BY state")
    }
    result.numbers["task_runs"] = states
    result.numbers["task_runs_not_success"] = [
        f"{r['name']} {r['state']}: {(r['error'] or '')[:160]}"
        for r in stack.rows(
            "SELECT name, state, error FROM task_runs WHERE state <> 'SUCCESS' "
            "AND task_id NOT LIKE 'hostile-%' ORDER BY id LIMIT 12"
        )
    ]
    left = stack.rows(
        "SELECT task_id, name, state, started_at FROM task_runs "
        "WHERE state IN ('STARTED', 'PENDING') ORDER BY started_at"
    )
    result.numbers["task_runs_left_started"] = len(left)
    if left:
        result.problems.append(f"task runs left STARTED/PENDING: {left[:5]}")


def reconcile_once(stack: Stack, timeout: float = 15) -> str | None:
    """Send the reconciler (beat's task) and wait for its end; its state, None if it never
    ended."""
    task_id = f"audit-reconcile-{uuid.uuid4()}"
    stack.celery.send_task(celeryconfig.RECONCILE_TASK, task_id=task_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = stack.scalar("SELECT state FROM task_runs WHERE task_id = :t", t=task_id)
        if state not in (None, "STARTED"):
            return state
        time.sleep(0.3)
    return None


def settle(stack: Stack, timeout: float, expect_given_up: bool = False) -> Audit:
    """Stop every beat, then run the reconciler on beat's period until the audit holds and
    the queues are empty (or `timeout` passes); the last audit."""
    for child in stack.children:
        if child.name.startswith("beat"):
            child.stop()
    period = int(stack.setting("RECONCILE_INTERVAL_SEC"))
    deadline = time.monotonic() + timeout
    while True:
        started = time.monotonic()
        reconcile_once(stack)
        result = audit(stack, expect_given_up)
        queued = sum(stack.queue_lengths().values())
        if result.clean and queued == 0:
            return result
        if time.monotonic() >= deadline:
            result.numbers["queued_at_deadline"] = queued
            return result
        time.sleep(max(0.0, period - (time.monotonic() - started)))


def assert_clean(result: Audit, logs: str = "") -> None:
    assert result.clean, result.report() + (f"\n--- logs (tail) ---\n{logs}" if logs else "")
