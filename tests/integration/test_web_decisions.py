"""Why (no) trade, on PostgreSQL: the decisions page with its filters and paging, 400 on a
bad filter, and the dashboard's one-sentence summary of the last run and a failed run's error."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from app.extensions import db
from app.models import (
    Evaluation,
    FillRecord,
    Market,
    MarketDataRun,
    Order,
    Portfolio,
    RiskDecisionRecord,
    SignalRecord,
)
from tests.integration.test_web_admin import build_app, login, token_in
from tests.integration.test_web_metrics import wipe

pytestmark = pytest.mark.integration

BELOW = [f"C{n}USDT" for n in range(8)]
FAILED_RUN_ERROR = "MEXC unreachable: ConnectError after 4 attempts"


@pytest.fixture
def app(stack_env, engine):
    wipe(engine)
    app = build_app(stack_env)
    yield app
    app.extensions["celery"].close()


@pytest.fixture
def admin(app):
    client = app.test_client()
    assert login(client).status_code == 302
    return client, token_in(client.get("/admin/controls").get_data(as_text=True))


def add_run(session, started: datetime, status: str = "ok", error: str | None = None) -> int:
    run = MarketDataRun(
        run_key=str(uuid.uuid4()),
        trigger="beat",
        status=status,
        started_at=started,
        finished_at=started + timedelta(seconds=2),
        parameters={"top_n": 10},
        screened_symbols=[],
        stored_symbols=[],
        rejections=[],
        retries=[],
        error=error,
    )
    session.add(run)
    session.flush()
    return run.id


def evaluate(session, run_id: int, symbol: str, outcome: str, reason: str, **values: str) -> None:
    session.add(
        Evaluation(
            run_id=run_id,
            symbol=symbol,
            strategy="momentum",
            outcome=outcome,
            reason=reason,
            values={"entry_threshold_pct": "0.005", "interval": "1m", **values},
            evaluated_at=datetime.now(UTC),
        )
    )


def decision_world(now: datetime, failed_after: bool = True) -> dict[str, int]:
    """One evaluated run of 10 symbols: 8 below the threshold, 1 whose last candle is down,
    1 buy that was filled (BTCUSDT, prices at 2 and quantities at 6 decimals); and, newer, a
    run that failed before the strategy saw it."""
    with db.transaction() as session:
        portfolio = Portfolio(
            name="paper-1",
            active=True,
            opened_at=now - timedelta(days=1),
            initial_capital=D("1000"),
            cash=D("900.00374"),
            realized_pnl=D("0"),
            fees_paid=D("0.09999812"),
            day=now.date(),
            day_start_equity=D("1000"),
            updated_at=now,
        )
        session.add(portfolio)
        session.add(
            Market(
                symbol="BTCUSDT",
                base_asset="BTC",
                quote_asset="USDT",
                status="1",
                is_spot_trading_allowed=True,
                base_asset_precision=6,
                quote_asset_precision=2,
                min_notional=D("1"),
                min_qty=D("0.000001"),
                maker_commission=D("0"),
                taker_commission=D("0.001"),
                max_quote_amount=None,
                updated_at=now,
            )
        )
        session.flush()
        run_id = add_run(session, now - timedelta(minutes=1))
        for n, symbol in enumerate(BELOW):
            evaluate(
                session,
                run_id,
                symbol,
                "below_threshold",
                f"momentum +0.{20 + n} % over 15m, below the 0.50 % entry threshold",
                momentum_pct=f"0.00{20 + n}",
                price="1.23456789",
            )
        evaluate(
            session,
            run_id,
            "ETHUSDT",
            "last_candle_down",
            "momentum +0.80 % over 15m (at least 0.50 %) but the last candle is not up",
            momentum_pct="0.008",
        )
        evaluate(
            session,
            run_id,
            "BTCUSDT",
            "buy",
            "momentum +1.20 % over 15m (15 x 1m candles) >= 0.50 %, last candle up",
            momentum_pct="0.012",
            price="5100.123456",
            size="0.019607",
        )
        signal = SignalRecord(
            run_id=run_id,
            symbol="BTCUSDT",
            strategy="momentum",
            direction="BUY",
            size=D("0.019607"),
            signal_strength=D("0.6"),
            price=D("5100.123456"),
            is_exit=False,
            reason="momentum +1.20 %",
            timestamp=now,
        )
        session.add(signal)
        session.flush()
        decision = RiskDecisionRecord(
            signal_id=signal.id,
            approved=True,
            size=D("0.019607"),
            rejected_by=None,
            stop_price=D("4998.1209868812345678901234"),
            verdicts=[
                {
                    "layer": 4,
                    "name": "exposure",
                    "passed": True,
                    "action": "pass",
                    "values": {
                        "exposure_pct": "0.0999",
                        "limit": "0.50",
                        "halted": "false",
                        "exposure_before": "0E-65",
                    },
                }
            ],
            decided_at=now,
        )
        session.add(decision)
        session.flush()
        order = Order(
            client_order_id=f"cdb-{signal.id}",
            portfolio_id=portfolio.id,
            run_id=run_id,
            signal_id=signal.id,
            decision_id=decision.id,
            symbol="BTCUSDT",
            side="BUY",
            size=D("0.019607"),
            est_price=D("5100.123456"),
            status="filled",
            approved_by=[1, 2, 3, 4, 5, 6],
            risk_checks=[],
            created_at=now,
            updated_at=now,
        )
        session.add(order)
        session.flush()
        session.add(
            FillRecord(
                order_id=order.id,
                symbol="BTCUSDT",
                side="BUY",
                qty=D("0.019607"),
                price=D("5100.123456"),
                notional=D("99.99812"),
                fee=D("0.09999812"),
                slippage_pct=D("0.00012"),
                realized_pnl=D("-0.09999812"),
                filled_at=now,
            )
        )
        failed_id = (
            add_run(session, now - timedelta(seconds=5), "failed", FAILED_RUN_ERROR)
            if failed_after
            else None
        )
        return {"run_id": run_id, "failed_id": failed_id, "order_id": order.id}


def rows(html: str) -> list[str]:
    """The symbols of the decisions table's rows, in order."""
    return re.findall(r'<tr class="outcome-[a-z_]+">\s*<td>.*?</td>\s*<td><a [^>]*>(\w+)</a>', html)


def test_every_evaluation_is_listed_with_its_numbers_and_what_followed(admin):
    client, _ = admin
    world = decision_world(datetime.now(UTC))
    response = client.get("/admin/decisions")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert sorted(rows(html)) == sorted([*BELOW, "ETHUSDT", "BTCUSDT"])
    # the ones without a signal, with the strategy's verdict and numbers
    assert "momentum +0.21 % over 15m, below the 0.50 % entry threshold" in html
    assert "below threshold" in html and "last candle down" in html and "no signal" in html
    assert "<th>momentum</th><td" in html and "0.21 %" in html  # a fraction as a percent
    assert "<th>entry threshold</th><td" in html and ">0.50 %<" in html
    # the buy: risk, order with its trace, fill at the symbol's precision
    assert f'href="/admin/orders/{world["order_id"]}"' in html
    assert "approved <span" in html and "0.019607" in html
    assert 'title="5100.123456">5100.12</span>' in html
    assert 'title="99.99812 USDT">100.00 USDT</span>' in html
    assert "Decisions</a>" in html  # in the nav


def test_filters_by_symbol_run_outcome_and_result(admin):
    client, _ = admin
    world = decision_world(datetime.now(UTC))

    def listed(query: str) -> list[str]:
        response = client.get(f"/admin/decisions?{query}")
        assert response.status_code == 200, (query, response.get_data(as_text=True)[:500])
        return sorted(rows(response.get_data(as_text=True)))

    assert listed("symbol=btcusdt") == ["BTCUSDT"]
    assert listed("outcome=below_threshold") == sorted(BELOW)
    assert listed("outcome=last_candle_down") == ["ETHUSDT"]
    assert listed("result=filled") == ["BTCUSDT"]
    assert listed("result=no_signal") == sorted([*BELOW, "ETHUSDT"])
    assert listed("result=rejected") == []
    assert listed(f"run={world['run_id']}&outcome=buy&result=filled") == ["BTCUSDT"]
    assert listed(f"run={world['failed_id']}") == []  # a run the strategy never saw
    assert listed("symbol=&run=&outcome=&result=") == sorted([*BELOW, "ETHUSDT", "BTCUSDT"])
    run_page = client.get(f"/admin/decisions?run={world['run_id']}").get_data(as_text=True)
    assert "10 evaluated: 8 below threshold, 1 last candle down, 1 buy → filled" in run_page
    assert '<option value="buy" selected>' in client.get("/admin/decisions?outcome=buy").text


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("outcome=sideways", 400, "outcome=&#39;sideways&#39; is not one of buy, sell"),
        ("result=maybe", 400, "result=&#39;maybe&#39; is not one of filled, rejected"),
        ("run=abc", 400, "run=&#39;abc&#39; is not an id"),
        ("run=-1", 400, "run=&#39;-1&#39; is not an id"),
        ("run=99999999999999999999", 400, "is not an id"),
        ("run=424242", 404, "no market-data run 424242"),
        ("symbol=BTC%20USDT", 400, "is not a symbol"),
        ("symbol=%00", 400, "symbol=&#39;\\x00&#39; holds control characters"),
        ("page=0", 400, "is not a page number"),
        ("page=abc", 400, "is not a page number"),
    ],
)
def test_a_bad_filter_is_a_readable_400_or_404(admin, query, status, message):
    client, _ = admin
    decision_world(datetime.now(UTC))
    response = client.get(f"/admin/decisions?{query}")
    assert response.status_code == status
    html = response.get_data(as_text=True)
    assert message in html
    assert "Back to the dashboard" in html  # the panel's own error page, logged in


def test_decisions_are_paged(admin):
    client, _ = admin
    now = datetime.now(UTC)
    with db.transaction() as session:
        run_id = add_run(session, now)
        for n in range(60):
            evaluate(session, run_id, f"S{n:02d}USDT", "not_enough_candles", "3 candles stored")
    first = client.get("/admin/decisions").get_data(as_text=True)
    second = client.get("/admin/decisions?page=2").get_data(as_text=True)
    assert len(rows(first)) == 50 and "older &rarr;" in first
    assert len(rows(second)) == 10 and "&larr; newer" in second
    assert set(rows(first)).isdisjoint(rows(second))
    paged = client.get("/admin/decisions?outcome=not_enough_candles&page=2").get_data(as_text=True)
    assert len(rows(paged)) == 10
    assert "outcome=not_enough_candles&amp;page=1" in paged  # the pager keeps the filter


def test_dashboard_says_what_the_last_run_did_and_that_a_newer_one_failed(admin):
    client, _ = admin
    world = decision_world(datetime.now(UTC))
    html = client.get("/admin/").get_data(as_text=True)
    sentence = "10 evaluated: 8 below threshold, 1 last candle down, 1 buy → filled"
    link = re.search(rf'<a class="sentence" href="([^"]+)">{re.escape(sentence)}</a>', html)
    assert link, html[:4000]
    assert link.group(1) == f"/admin/decisions?run={world['run_id']}"
    assert FAILED_RUN_ERROR in html
    assert re.search(r'class="flash error run-error">Market-data run <a [^>]*>#\d+</a>', html)


def test_dashboard_shows_a_failed_run_with_nothing_evaluated(admin):
    client, _ = admin
    with db.transaction() as session:
        add_run(session, datetime.now(UTC), "failed", "every ticker request timed out")
    html = client.get("/admin/").get_data(as_text=True)
    assert "run failed: every ticker request timed out" in html
    assert client.get("/admin/decisions?run=1").status_code == 200
