"""Why did the bot (not) trade? Each evaluated (run, symbol) with what became of it: the
strategy's verdict and numbers, then the signal's risk decision, order and fill.

Read by the admin panel's decisions page and dashboard, and by `cdb explain`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, select
from sqlalchemy.orm import Session

from app.domain.strategies import OUTCOMES, SIGNAL_OUTCOMES, get_strategy
from app.models import (
    Evaluation,
    FillRecord,
    MarketDataRun,
    Order,
    RiskDecisionRecord,
    SignalRecord,
)
from app.services.admin_queries import PER_PAGE, Page, paginate
from app.services.universe import snapshot_of_run, view_at

OUTCOME_LABELS = {
    "buy": "buy",
    "sell": "sell",
    "stop_loss": "stop-loss exit",
    "below_threshold": "below threshold",
    "last_candle_down": "last candle down",
    "hold": "holding",
    "not_enough_candles": "not enough candles",
    "no_price": "no price",
    "no_data": "no data",
    "too_small": "too small",
    "stale_run": "run too old",
    "invalid": "invalid signal",
    "not_fetched": "not fetched",
}
# What an explained run says for a symbol without a kept evaluation and no verdict.
NOT_EVALUATED = {
    "rejected": "market data rejected",
    "not_in_universe": "not in the universe",
}
RESULTS = ("filled", "rejected", "pending", "no_signal")


@dataclass(frozen=True)
class Decision:
    """One evaluated (run, symbol) and what followed from it."""

    run_id: int
    symbol: str
    evaluated_at: datetime
    strategy: str
    outcome: str
    reason: str
    values: dict[str, Any]
    signal_id: int | None = None
    direction: str | None = None
    signal_size: Decimal | None = None
    approved: bool | None = None
    rejected_by: str | None = None
    approved_size: Decimal | None = None
    order_id: int | None = None
    order_status: str | None = None
    reject_reason: str | None = None
    fill_qty: Decimal | None = None
    fill_price: Decimal | None = None
    fill_notional: Decimal | None = None

    @property
    def label(self) -> str:
        return OUTCOME_LABELS.get(self.outcome, NOT_EVALUATED.get(self.outcome, self.outcome))

    @property
    def result(self) -> str:
        """filled, rejected, pending or no_signal: where the signal got to."""
        if self.signal_id is None:
            return "no_signal"
        if self.order_status == "filled":
            return "filled"
        if self.approved is False or self.order_status in ("rejected", "expired", "cancelled"):
            return "rejected"
        return "pending"

    @property
    def what_followed(self) -> str | None:
        """ "filled", "rejected by exposure", "order rejected: below_min_notional", ... or None
        without a signal."""
        if self.signal_id is None:
            return None
        if self.approved is None:
            return "awaiting risk"
        if not self.approved:
            return f"rejected by {self.rejected_by}"
        if self.order_status in (None, "new"):
            return "awaiting execution"
        if self.order_status == "filled":
            return "filled"
        reason = (self.reject_reason or "").split(":", 1)[0]
        return f"order {self.order_status}" + (f": {reason}" if reason else "")

    @property
    def summary(self) -> str:
        """ "below threshold", "buy → filled", "buy → rejected by exposure"."""
        followed = self.what_followed
        return self.label if followed is None else f"{self.label} → {followed}"


@dataclass(frozen=True)
class DecisionFilter:
    symbol: str | None = None
    run_id: int | None = None
    outcome: str | None = None
    result: str | None = None

    def __post_init__(self) -> None:
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise ValueError(f"outcome={self.outcome!r} is not one of {', '.join(OUTCOMES)}")
        if self.result is not None and self.result not in RESULTS:
            raise ValueError(f"result={self.result!r} is not one of {', '.join(RESULTS)}")


def _statement() -> Select[Any]:
    return (
        select(Evaluation, SignalRecord, RiskDecisionRecord, Order, FillRecord)
        .outerjoin(
            SignalRecord,
            and_(
                SignalRecord.run_id == Evaluation.run_id, SignalRecord.symbol == Evaluation.symbol
            ),
        )
        .outerjoin(RiskDecisionRecord, RiskDecisionRecord.signal_id == SignalRecord.id)
        .outerjoin(Order, Order.signal_id == SignalRecord.id)
        .outerjoin(FillRecord, FillRecord.order_id == Order.id)
    )


def _decision(row: Any) -> Decision:
    evaluation, signal, decision, order, fill = row
    return Decision(
        run_id=evaluation.run_id,
        symbol=evaluation.symbol,
        evaluated_at=evaluation.evaluated_at,
        strategy=evaluation.strategy,
        outcome=evaluation.outcome,
        reason=evaluation.reason,
        values=dict(evaluation.values),
        signal_id=signal.id if signal else None,
        direction=signal.direction if signal else None,
        signal_size=signal.size if signal else None,
        approved=decision.approved if decision else None,
        rejected_by=decision.rejected_by if decision else None,
        approved_size=decision.size if decision else None,
        order_id=order.id if order else None,
        order_status=order.status if order else None,
        reject_reason=order.reject_reason if order else None,
        fill_qty=fill.qty if fill else None,
        fill_price=fill.price if fill else None,
        fill_notional=fill.notional if fill else None,
    )


def _filtered(wanted: DecisionFilter) -> Select[Any]:
    statement = _statement()
    if wanted.symbol:
        statement = statement.where(Evaluation.symbol == wanted.symbol.upper())
    if wanted.run_id is not None:
        statement = statement.where(Evaluation.run_id == wanted.run_id)
    if wanted.outcome:
        statement = statement.where(Evaluation.outcome == wanted.outcome)
    if wanted.result == "no_signal":
        statement = statement.where(SignalRecord.id.is_(None))
    elif wanted.result == "filled":
        statement = statement.where(Order.status == "filled")
    elif wanted.result == "rejected":
        statement = statement.where(
            (RiskDecisionRecord.approved.is_(False))
            | Order.status.in_(("rejected", "expired", "cancelled"))
        )
    elif wanted.result == "pending":
        statement = statement.where(
            SignalRecord.id.is_not(None),
            (RiskDecisionRecord.id.is_(None)) | (Order.status == "new"),
        )
    return statement.order_by(Evaluation.run_id.desc(), Evaluation.symbol)


def decisions_page(
    session: Session, wanted: DecisionFilter, number: int, per_page: int = PER_PAGE
) -> Page:
    page = paginate(session, _filtered(wanted), number, per_page)
    return Page([_decision(row) for row in page.items], page.number, page.per_page, page.has_next)


def run_decisions(session: Session, run_id: int) -> list[Decision]:
    return [_decision(row) for row in session.execute(_filtered(DecisionFilter(run_id=run_id)))]


@dataclass(frozen=True)
class RunSummary:
    """A market-data run and what the strategy made of it, in one sentence and in counts."""

    run_id: int
    status: str
    trigger: str
    started_at: datetime
    error: str | None
    screened: int
    stored: int
    market_rejections: list[dict[str, Any]]
    decisions: list[Decision] = field(default_factory=list)
    # outcome -> count over the whole universe (None for runs from before it was counted)
    evaluation_counts: dict[str, int] | None = None

    @property
    def evaluated(self) -> int:
        if self.evaluation_counts:
            return sum(self.evaluation_counts.values())
        return len(self.decisions)

    @property
    def counts(self) -> list[tuple[str, int]]:
        """(summary, count), most frequent first, signals last: what the sentence says.

        The outcomes without a signal come from the whole universe's counts; the signals
        with what followed them ("buy → filled") from the kept rows."""
        traded = Counter(d.summary for d in self.decisions if d.signal_id is not None)
        if self.evaluation_counts:
            plain = Counter(
                {
                    OUTCOME_LABELS.get(outcome, outcome): count
                    for outcome, count in self.evaluation_counts.items()
                    if outcome not in SIGNAL_OUTCOMES
                }
            )
            # A signal outcome whose signal was refused counts as plain in the rows.
            for d in self.decisions:
                if d.signal_id is None and d.outcome in SIGNAL_OUTCOMES:
                    plain[d.label] += 1
        else:
            plain = Counter(d.summary for d in self.decisions if d.signal_id is None)
        ordered = sorted(plain.items(), key=lambda c: (-c[1], c[0]))
        return ordered + sorted(traded.items(), key=lambda c: (-c[1], c[0]))

    @property
    def text(self) -> str:
        """ "10 evaluated: 8 below threshold, 1 last candle down, 1 buy → filled"."""
        if self.status == "failed" and not self.decisions:
            return f"run failed: {self.error or 'no reason recorded'}"
        if self.status == "running":
            return "market data still being fetched"
        if not self.evaluated:
            return "nothing evaluated yet"
        parts = ", ".join(f"{count:,} {what}" for what, count in self.counts)
        text = f"{self.evaluated:,} evaluated: {parts}"
        if self.market_rejections:
            text += f"; {len(self.market_rejections)} rejected by market-data checks"
        return text


def run_summary(session: Session, run_id: int | None = None) -> RunSummary | None:
    """The run (default: the newest one the strategy has evaluated, or else the newest run)."""
    if run_id is None:
        run_id = session.scalar(select(Evaluation.run_id).order_by(Evaluation.run_id.desc()))
    if run_id is None:
        run = session.scalar(select(MarketDataRun).order_by(MarketDataRun.id.desc()))
    else:
        run = session.get(MarketDataRun, run_id)
    if run is None:
        return None
    return RunSummary(
        run_id=run.id,
        status=run.status,
        trigger=run.trigger,
        started_at=run.started_at,
        error=run.error,
        screened=len(run.screened_symbols),
        stored=len(run.stored_symbols),
        market_rejections=list(run.rejections),
        decisions=run_decisions(session, run.id),
        evaluation_counts=dict(run.evaluation_counts) if run.evaluation_counts else None,
    )


def explain(
    session: Session, symbol: str, runs: int = 5, strategy: str = "momentum"
) -> list[Decision]:
    """What happened to `symbol` in each of the newest `runs` finished market-data runs,
    including the runs in which it kept no evaluation row: its verdict is then judged again
    from that run's all-tickers history (the same rule, the run's own parameters), or the
    reason it was not in the universe at all."""
    symbol = symbol.upper()
    recent = session.scalars(
        select(MarketDataRun)
        .where(MarketDataRun.status != "running")
        .order_by(MarketDataRun.id.desc())
        .limit(runs)
    ).all()
    if not recent:
        return []
    ids = [run.id for run in recent]
    found = {
        d.run_id: d
        for d in (
            _decision(row)
            for row in session.execute(
                _statement().where(Evaluation.symbol == symbol, Evaluation.run_id.in_(ids))
            )
        )
    }
    out = []
    for run in recent:
        if run.id in found:
            out.append(found[run.id])
        else:
            out.append(_judged_again(session, run, symbol, strategy))
    return out


def _judged_again(session: Session, run: MarketDataRun, symbol: str, strategy: str) -> Decision:
    when = run.finished_at or run.started_at

    def decision(outcome: str, reason: str, values: dict[str, Any] | None = None) -> Decision:
        return Decision(run.id, symbol, when, strategy, outcome, reason, values or {})

    if run.status == "failed" and not run.stored_symbols:
        return decision("rejected", f"the whole run failed: {run.error or 'no reason recorded'}")
    rejection = next(
        (r for r in run.rejections if isinstance(r, dict) and r.get("symbol") == symbol), None
    )
    if rejection is not None:
        return decision(
            "rejected", f"{rejection.get('stage')} data rejected: {rejection.get('reason')}"
        )
    snapshot = snapshot_of_run(session, run.id)
    if snapshot is None or symbol not in snapshot.prices:
        return decision(
            "not_in_universe",
            "not in this run's universe: not an online USDT pair, not in SYMBOL_WHITELIST, "
            "below MIN_QUOTE_VOLUME, or its ticker failed the checks",
        )
    parameters = run.parameters or {}
    view = view_at(
        session,
        snapshot.taken_at,
        {symbol: snapshot.prices[symbol]},
        parameters.get("interval", "1m"),
        int(parameters.get("lookback_minutes", 15)),
    )
    judged = get_strategy(strategy).screen(view, {}, Decimal(1), Decimal("0.1"))[symbol]
    top_n = parameters.get("top_n")
    note = f"judged from the all-tickers history (not among the TOP_N={top_n} fetched)"
    if judged.outcome in SIGNAL_OUTCOMES:
        return decision(
            "not_fetched",
            f"{judged.reason}; but {note}, so there was nothing to trade it on",
            judged.values,
        )
    return decision(judged.outcome, f"{judged.reason} ({note})", judged.values)
