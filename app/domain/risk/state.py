"""The risk state between decisions: halts and the operator controls that leave them."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from app.domain.risk.limits import HALT_DRAWDOWN, HALT_OPERATOR, require_utc
from app.domain.trading import RiskState


def halt_kind(state: RiskState) -> str | None:
    """`"drawdown"`, `"operator"` or `"circuit_breaker"` while halted, else None."""
    if not state.halted:
        return None
    return (state.halt_reason or HALT_OPERATOR).split(":", 1)[0].strip()


def halt(state: RiskState, reason: str, now: datetime) -> RiskState:
    """Operator halt: no new entries until `resume`. Exits (stop-losses) still go through.

    `reason` is free text stored as `"operator: <reason>"`. A state that is already halted is
    returned unchanged, so an operator halt never masks a drawdown halt (which `resume` could
    then clear).
    """
    require_utc(now)
    if state.halted:
        return state
    detail = reason.strip()
    return replace(
        state,
        halted=True,
        halt_reason=f"{HALT_OPERATOR}: {detail}" if detail else HALT_OPERATOR,
        halted_at=now,
    )


def resume(state: RiskState) -> RiskState:
    """Operator resume: clears an operator or circuit-breaker halt, the breaker pause and its trip
    count, and the stale-data pause.

    Raises ValueError for a drawdown halt: that one needs an explicit `release_drawdown`.
    A state that is not halted still has its pauses cleared (a manual "retry now").
    """
    if halt_kind(state) == HALT_DRAWDOWN:
        raise ValueError(
            "trading is halted by the daily drawdown limit; resume cannot clear that, "
            "use release_drawdown (the drawdown-release control) instead"
        )
    return replace(
        state,
        halted=False,
        halt_reason=None,
        halted_at=None,
        breaker_paused_until=None,
        breaker_trips=0,
        stale_paused=False,
    )


def release_drawdown(state: RiskState) -> RiskState:
    """Operator release of a drawdown halt. Pauses are left alone: they recover by themselves.

    Idempotent: a state not halted by the drawdown is returned unchanged (an operator or
    breaker halt is cleared with `resume`). Releasing while today's drawdown is still at or
    over the limit is pointless: the next `check_state` or `decide` halts again.
    """
    if halt_kind(state) != HALT_DRAWDOWN:
        return state
    return replace(state, halted=False, halt_reason=None, halted_at=None)


def with_halt(state: RiskState, kind: str, detail: str, now: datetime) -> RiskState:
    """Halt for `kind`; an existing halt stays unless a drawdown halt replaces another kind."""
    if state.halted and (kind != HALT_DRAWDOWN or halt_kind(state) == HALT_DRAWDOWN):
        return state
    return replace(state, halted=True, halt_reason=f"{kind}: {detail}", halted_at=now)
