"""Why (no) trade: every evaluated (run, symbol) with the strategy's verdict and numbers, and
what followed it, filterable by symbol, run, outcome and result."""

from __future__ import annotations

from flask import abort, render_template, request

from app.domain.strategies import OUTCOMES
from app.format import show_all
from app.models import MarketDataRun
from app.services.decisions import OUTCOME_LABELS, RESULTS, DecisionFilter, decisions_page
from app.services.decisions import run_summary as summarise_run
from app.web.admin import bp, precisions_of, read_session
from app.web.admin.params import id_arg, page_number, symbol_arg

RESULT_LABELS = {
    "filled": "filled",
    "rejected": "rejected",
    "pending": "pending",
    "no_signal": "no signal",
}


@bp.app_template_filter("outcome")
def outcome_label(outcome: str) -> str:
    """ "below_threshold" -> "below threshold"."""
    return OUTCOME_LABELS.get(outcome, outcome.replace("_", " "))


@bp.get("/decisions")
def decisions() -> tuple[str, int] | str:
    session = read_session()
    run_id = id_arg("run")
    try:
        wanted = DecisionFilter(
            symbol=symbol_arg(),
            run_id=run_id,
            outcome=request.args.get("outcome", "").strip() or None,
            result=request.args.get("result", "").strip() or None,
        )
    except ValueError as exc:
        abort(400, str(exc))
    if run_id is not None and session.get(MarketDataRun, run_id) is None:
        abort(404, f"no market-data run {run_id}")
    page = decisions_page(session, wanted, page_number())
    prec = precisions_of(session, [d.symbol for d in page.items])
    rows = [(d, show_all(d.values, prec[d.symbol])) for d in page.items]
    return render_template(
        "admin/decisions.html",
        page=page,
        rows=rows,
        prec=prec,
        wanted=wanted,
        run=summarise_run(session, run_id) if run_id is not None else None,
        outcomes=[(o, OUTCOME_LABELS.get(o, o)) for o in OUTCOMES],
        results=[(r, RESULT_LABELS.get(r, r)) for r in RESULTS],
        result_labels=RESULT_LABELS,
    )
