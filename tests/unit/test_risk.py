from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from types import SimpleNamespace

import pytest

from app.domain.risk import (
    LAYERS,
    RiskLimits,
    check_state,
    decide,
    halt,
    halt_kind,
    release_drawdown,
    resume,
    stop_loss_exits,
    stop_price,
    trip_breaker,
)
from app.domain.trading import (
    AlertCode,
    AlertLevel,
    MarketView,
    PortfolioState,
    Position,
    RiskState,
    Side,
    Signal,
)

pytestmark = pytest.mark.unit

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SYM = "BTCUSDT"
LIMITS = RiskLimits(
    max_daily_drawdown_pct=D("0.05"),
    max_slippage_pct=D("0.01"),
    max_spread_multiplier=D("5"),
    data_stale_timeout=timedelta(seconds=30),
    max_exposure_pct=D("0.50"),
    max_position_pct=D("0.10"),
    stop_loss_pct=D("0.02"),
)


def market(
    symbol: str = SYM,
    bids: tuple = ((D("99.9"), D("1000")),),
    asks: tuple = ((D("100"), D("1000")),),
    data_time: datetime = NOW,
    typical: D | None = D("0.001"),
    last: D = D("100"),
) -> MarketView:
    return MarketView(symbol, last, bids, asks, data_time, typical)


def signal(side: Side, size: str, symbol: str = SYM, **kw) -> Signal:
    fields = {"signal_strength": D("0.7"), "timestamp": NOW, "price": D("100"), "reason": "test"}
    return Signal(symbol, side, D(size), **(fields | kw))


def buy(size: str = "0.5", symbol: str = SYM, **kw) -> Signal:
    return signal(Side.BUY, size, symbol, **kw)


def sell(size: str = "0.5", symbol: str = SYM, **kw) -> Signal:
    return signal(Side.SELL, size, symbol, is_exit=True, **kw)


def portfolio(cash: str = "1000", *positions: Position, day_start: str | None = None):
    start = D(day_start) if day_start else None
    return PortfolioState(D(cash), {p.symbol: p for p in positions}, day_start_equity=start)


def pos(symbol: str = SYM, qty: str = "0.5", entry: str = "100", last: str = "100") -> Position:
    return Position(symbol, D(qty), D(entry), D(last))


def run(sig=None, pf=None, mk=None, state=None, limits=LIMITS, now=NOW):
    return decide(
        sig or buy(), pf or portfolio(), mk or market(), state or RiskState(), limits, now
    )


def verdict(decision, name):
    return next(v for v in decision.verdicts if v.name == name)


# General ---------------------------------------------------------------------------------------


def test_an_approved_entry_records_all_six_layers_in_order():
    decision = run()
    assert decision.approved and decision.rejected_by is None
    assert decision.size == D("0.5")
    assert [(v.layer, v.name) for v in decision.verdicts] == list(enumerate(LAYERS, 1))
    assert all(v.passed for v in decision.verdicts)
    assert all(isinstance(x, str) for v in decision.verdicts for x in v.values.values())
    assert decision.alerts == ()
    assert decision.state == RiskState()


def test_limits_from_settings_and_validation():
    settings = SimpleNamespace(
        max_daily_drawdown_pct=D("0.05"),
        max_slippage_pct=D("0.01"),
        max_spread_multiplier=D("5.0"),
        data_stale_timeout_sec=45,
        max_exposure_pct=D("0.50"),
        max_position_pct=D("0.10"),
        stop_loss_pct=D("0.02"),
    )
    limits = RiskLimits.from_settings(settings)
    assert limits.data_stale_timeout == timedelta(seconds=45)
    assert limits.breaker_pause == timedelta(seconds=60) and limits.breaker_max_retries == 10
    assert limits.max_spread_multiplier == D("5.0")
    with pytest.raises(ValueError, match="max_exposure_pct"):
        replace(LIMITS, max_exposure_pct=D("1.5"))
    with pytest.raises(ValueError, match="stop_loss_pct"):
        replace(LIMITS, stop_loss_pct=D("0"))


def test_from_real_settings_defaults():
    from app.config import Settings

    limits = RiskLimits.from_settings(Settings(_env_file=None))
    assert limits.max_position_pct == D("0.10") and limits.stop_loss_pct == D("0.02")
    assert limits.data_stale_timeout == timedelta(seconds=30)


def test_signals_that_cannot_be_checked_are_refused():
    with pytest.raises(ValueError, match="timezone"):
        run(now=datetime(2024, 5, 1, 12, 0))
    with pytest.raises(ValueError, match="positive"):
        run(sig=buy("0"))
    with pytest.raises(ValueError, match="ETHUSDT"):
        run(mk=market(symbol="ETHUSDT"))


# Layer 1: daily drawdown -----------------------------------------------------------------------


def test_drawdown_breach_halts_rejects_and_alerts_critical():
    decision = run(pf=portfolio("940", day_start="1000"))  # 6 % down
    assert not decision.approved and decision.rejected_by == "daily_drawdown"
    assert decision.size == 0
    assert len(decision.verdicts) == 1
    layer = decision.verdicts[0]
    assert (layer.layer, layer.action, layer.passed) == (1, "halt", False)
    assert layer.values["equity"] == "940" and layer.values["day_start_equity"] == "1000"
    assert layer.values["drawdown_pct"] == "0.06" and layer.values["limit"] == "0.05"
    assert decision.state.halted and halt_kind(decision.state) == "drawdown"
    assert decision.state.halted_at == NOW
    [alert] = decision.alerts
    assert (alert.code, alert.level) == (AlertCode.RISK_LIMIT, AlertLevel.CRITICAL)
    assert "drawdown" in alert.message


def test_drawdown_exactly_at_the_limit_halts_and_just_below_passes():
    assert run(pf=portfolio("950", day_start="1000")).state.halted
    assert run(pf=portfolio("950.01", day_start="1000")).approved


def test_a_halted_state_rejects_entries_without_repeating_the_alert():
    halted = run(pf=portfolio("940", day_start="1000")).state
    decision = run(pf=portfolio("940", day_start="1000"), state=halted)
    assert decision.rejected_by == "daily_drawdown" and decision.alerts == ()
    assert decision.state == halted


def test_a_drawdown_halt_survives_midnight_until_released():
    halted = run(pf=portfolio("940", day_start="1000")).state
    next_day = portfolio("940", day_start="940")  # the day rolled: drawdown back to 0
    tomorrow = NOW + timedelta(days=1)
    decision = run(pf=next_day, mk=market(data_time=tomorrow), state=halted, now=tomorrow)
    assert decision.rejected_by == "daily_drawdown"
    assert verdict(decision, "daily_drawdown").values["drawdown_pct"] == "0"
    with pytest.raises(ValueError, match="release_drawdown"):
        resume(halted)
    released = release_drawdown(halted)
    assert not released.halted and released.halt_reason is None
    assert run(pf=next_day, mk=market(data_time=tomorrow), state=released, now=tomorrow).approved


def test_exits_pass_the_drawdown_layer_but_a_breach_still_halts():
    pf = portfolio("900", pos(qty="0.4", last="100"), day_start="1000")  # equity 940
    decision = run(sig=sell("0.4"), pf=pf)
    assert decision.approved
    assert verdict(decision, "daily_drawdown").action == "pass (exit)"
    assert halt_kind(decision.state) == "drawdown"
    assert [a.code for a in decision.alerts] == [AlertCode.RISK_LIMIT]


def test_a_drawdown_breach_replaces_an_operator_halt():
    stopped = halt(RiskState(), "maintenance", NOW)
    assert halt_kind(stopped) == "operator"
    decision = run(pf=portfolio("940", day_start="1000"), state=stopped)
    assert halt_kind(decision.state) == "drawdown"
    assert [a.level for a in decision.alerts] == [AlertLevel.CRITICAL]
    with pytest.raises(ValueError):
        resume(decision.state)


def test_check_state_halts_once_on_a_breach():
    state, alerts = check_state(portfolio("950", day_start="1000"), RiskState(), LIMITS, NOW)
    assert halt_kind(state) == "drawdown" and len(alerts) == 1
    assert alerts[0].level is AlertLevel.CRITICAL
    again, alerts = check_state(portfolio("900", day_start="1000"), state, LIMITS, NOW)
    assert again == state and alerts == ()
    calm, alerts = check_state(portfolio("990", day_start="1000"), RiskState(), LIMITS, NOW)
    assert calm == RiskState() and alerts == ()
    unknown_start, _ = check_state(portfolio("10"), RiskState(), LIMITS, NOW)
    assert not unknown_start.halted


# Operator controls -----------------------------------------------------------------------------


def test_operator_halt_blocks_entries_and_resume_clears_it_and_the_pauses():
    stopped = halt(RiskState(breaker_trips=3, stale_paused=True), "checking the feed", NOW)
    assert stopped.halt_reason == "operator: checking the feed" and stopped.halted_at == NOW
    assert run(state=stopped).rejected_by == "daily_drawdown"
    assert resume(stopped) == RiskState()
    paused = RiskState(breaker_paused_until=NOW + timedelta(seconds=30), breaker_trips=2)
    assert resume(paused) == RiskState()


def test_operator_halt_never_masks_an_existing_halt():
    drawdown = run(pf=portfolio("940", day_start="1000")).state
    assert halt(drawdown, "me too", NOW) == drawdown
    assert release_drawdown(RiskState()) == RiskState()
    operator = halt(RiskState(), "", NOW)
    assert operator.halt_reason == "operator"
    assert release_drawdown(operator) == operator  # an operator halt needs resume


# Layer 2: market anomalies ---------------------------------------------------------------------

THIN_ASKS = ((D("100"), D("0.1")), (D("103"), D("10")))


def test_slippage_above_the_limit_trips_the_breaker():
    decision = run(sig=buy("0.5"), mk=market(asks=THIN_ASKS))  # avg 102.4: 2.4 % slippage
    assert decision.rejected_by == "market_anomaly" and len(decision.verdicts) == 2
    layer = verdict(decision, "market_anomaly")
    assert layer.action == "pause" and not layer.passed
    assert layer.values["estimated_avg_price"] == "102.4"
    assert layer.values["slippage_pct"] == "0.024"
    assert layer.values["best_price"] == "100" and layer.values["side"] == "asks"
    assert decision.state.breaker_paused_until == NOW + timedelta(seconds=60)
    assert decision.state.breaker_trips == 1
    [alert] = decision.alerts
    assert (alert.code, alert.level) == (AlertCode.CIRCUIT_BREAKER, AlertLevel.WARNING)
    assert alert.symbol == SYM and "slippage" in alert.message


def test_slippage_at_the_limit_passes():
    asks = ((D("100"), D("0.5")), (D("102"), D("10")))
    assert run(sig=buy("1"), mk=market(asks=asks), pf=portfolio("10000")).approved  # 1 % exactly


def test_a_book_that_cannot_fill_the_order_trips_the_breaker():
    decision = run(sig=buy("2"), mk=market(asks=((D("100"), D("1")),)))
    assert decision.rejected_by == "market_anomaly"
    assert "too thin" in verdict(decision, "market_anomaly").values["problems"]
    empty = run(sig=buy("1"), mk=market(asks=()))
    assert empty.rejected_by == "market_anomaly" and empty.state.breaker_trips == 1


def test_a_spread_above_the_multiplier_trips_and_unknown_typical_skips_the_check():
    wide = market(bids=((D("99"), D("1000")),), asks=((D("100"), D("1000")),))  # ~1.005 %
    decision = run(mk=wide)  # typical 0.1 % x 5 = 0.5 %
    assert decision.rejected_by == "market_anomaly"
    values = verdict(decision, "market_anomaly").values
    assert values["typical_spread_pct"] == "0.001" and values["multiplier"] == "5"
    assert "spread" in values["problems"]
    assert run(mk=replace(wide, typical_spread_pct=None)).approved
    assert run(mk=replace(wide, typical_spread_pct=D("0.0021"))).approved  # limit 1.05 %


def test_a_crossed_book_is_an_anomaly():
    crossed = market(bids=((D("101"), D("1000")),), typical=None)
    assert run(mk=crossed).rejected_by == "market_anomaly"


def test_during_the_pause_everything_is_rejected_without_new_alerts():
    tripped = run(mk=market(asks=THIN_ASKS)).state
    decision = run(state=tripped, now=NOW + timedelta(seconds=59))
    assert decision.rejected_by == "market_anomaly" and decision.alerts == ()
    assert verdict(decision, "market_anomaly").action == "pause"
    assert decision.state == tripped


def test_a_pass_after_the_pause_resets_the_breaker():
    tripped = replace(run(mk=market(asks=THIN_ASKS)).state, breaker_trips=7)
    later = NOW + timedelta(seconds=60)
    decision = run(mk=market(data_time=later), state=tripped, now=later)
    assert decision.approved
    assert decision.state.breaker_trips == 0 and decision.state.breaker_paused_until is None


def test_a_failing_retry_after_the_pause_trips_again():
    first = run(mk=market(asks=THIN_ASKS)).state
    later = NOW + timedelta(seconds=61)
    second = run(mk=market(asks=THIN_ASKS), state=first, now=later)
    assert second.state.breaker_trips == 2
    assert second.state.breaker_paused_until == later + timedelta(seconds=60)


def test_more_than_ten_trips_in_a_row_halt_until_resumed():
    state = RiskState()
    now = NOW
    for trip in range(1, 11):
        decision = run(mk=market(asks=THIN_ASKS, data_time=now), state=state, now=now)
        state = decision.state
        assert state.breaker_trips == trip and not state.halted
        now += timedelta(seconds=60)
    decision = run(mk=market(asks=THIN_ASKS, data_time=now), state=state, now=now)
    assert verdict(decision, "market_anomaly").action == "halt"
    assert halt_kind(decision.state) == "circuit_breaker"
    assert [(a.code, a.level) for a in decision.alerts] == [
        (AlertCode.CIRCUIT_BREAKER, AlertLevel.WARNING),
        (AlertCode.RISK_LIMIT, AlertLevel.CRITICAL),
    ]
    later = now + timedelta(minutes=10)
    assert run(mk=market(data_time=later), state=decision.state, now=later).rejected_by == (
        "daily_drawdown"
    )
    assert run(mk=market(data_time=later), state=resume(decision.state), now=later).approved


def test_exits_are_checked_against_the_bids():
    thin_bids = ((D("99.9"), D("0.1")), (D("95"), D("10")))
    pf = portfolio("950", pos())
    decision = run(sig=sell("0.5"), pf=pf, mk=market(bids=thin_bids))
    assert decision.rejected_by == "market_anomaly"
    assert verdict(decision, "market_anomaly").values["side"] == "bids"
    assert verdict(decision, "daily_drawdown").action == "pass (exit)"


# Layer 3: data staleness -----------------------------------------------------------------------


def test_stale_data_pauses_and_alerts_once():
    old = market(data_time=NOW - timedelta(seconds=31))
    decision = run(mk=old)
    assert decision.rejected_by == "data_staleness" and len(decision.verdicts) == 3
    layer = verdict(decision, "data_staleness")
    assert layer.action == "pause"
    assert layer.values["age_seconds"] == "31.0" and layer.values["timeout_seconds"] == "30.0"
    assert decision.state.stale_paused
    [alert] = decision.alerts
    assert (alert.code, alert.level) == (AlertCode.DATA_STALE, AlertLevel.WARNING)
    again = run(mk=old, state=decision.state)
    assert again.rejected_by == "data_staleness" and again.alerts == ()


def test_fresh_data_resumes_by_itself():
    paused = RiskState(stale_paused=True)
    decision = run(mk=market(data_time=NOW - timedelta(seconds=30)), state=paused)  # at the limit
    assert decision.approved and not decision.state.stale_paused


def test_exits_wait_for_fresh_data_too():
    old = market(data_time=NOW - timedelta(minutes=5))
    assert run(sig=sell("0.5"), pf=portfolio("950", pos()), mk=old).rejected_by == (
        "data_staleness"
    )


# Layer 4: exposure -----------------------------------------------------------------------------


def others(value_each: str, count: int) -> list[Position]:
    return [pos(f"X{i}USDT", qty="1", last=value_each) for i in range(count)]


def test_an_entry_that_would_exceed_the_exposure_limit_is_blocked():
    pf = portfolio("550", *others("90", 5))  # equity 1000, exposure 450
    decision = run(sig=buy("1"), pf=pf)  # + 100 -> 55 %
    assert decision.rejected_by == "exposure" and len(decision.verdicts) == 4
    layer = verdict(decision, "exposure")
    assert layer.action == "block"
    assert layer.values["exposure_before"] == "450" and layer.values["exposure_after"] == "550"
    assert layer.values["limit_value"] == "500.00"
    [alert] = decision.alerts
    assert (alert.code, alert.level) == (AlertCode.RISK_LIMIT, AlertLevel.CRITICAL)


def test_exposure_above_80_percent_of_the_limit_alerts_but_approves():
    pf = portfolio("700", *others("100", 3))  # exposure 300 of 1000
    decision = run(sig=buy("1"), pf=pf)  # -> 40 % = 80 % of 50 %: no alert yet
    assert decision.approved and decision.alerts == ()
    decision = run(sig=buy("1.01"), pf=portfolio("10000"), mk=market())
    assert decision.alerts == ()
    pf = portfolio("690", *others("100", 3), pos("YUSDT", qty="1", last="10"))
    decision = run(sig=buy("1"), pf=pf)  # 410 of 1000 = 41 %
    assert decision.approved
    [alert] = decision.alerts
    assert (alert.code, alert.level) == (AlertCode.RISK_LIMIT, AlertLevel.CRITICAL)
    assert "80 % of limit" in alert.message


def test_exposure_is_checked_at_the_size_layer_5_allows():
    pf = portfolio("550", *others("90", 5))  # exposure 450: 50 left under the limit
    decision = run(sig=buy("3"), pf=pf)  # trimmed to 1 (100), still over -> blocked
    assert decision.rejected_by == "exposure"
    assert verdict(decision, "exposure").values["size"] == "1"
    pf = portfolio("600", *others("80", 5))  # exposure 400: 100 left
    decision = run(sig=buy("3"), pf=pf)
    assert decision.approved and decision.size == 1


def test_the_symbol_is_valued_at_the_higher_of_fill_and_last_price():
    pf = portfolio("600", *others("80", 5))
    decision = run(sig=buy("1"), pf=pf, mk=market(last=D("101")))  # 1 x 101: trimmed
    values = verdict(decision, "exposure").values
    assert values["valued_at_price"] == "101"
    assert decision.size < 1


def test_exits_pass_the_exposure_layer():
    pf = portfolio("0", *others("100", 9), pos())  # 100 % exposure
    decision = run(sig=sell("0.5"), pf=pf)
    assert decision.approved and verdict(decision, "exposure").action == "pass (exit)"


# Layer 5: position size ------------------------------------------------------------------------


def test_an_oversized_entry_is_trimmed_to_the_limit():
    decision = run(sig=buy("2"))  # 10 % of 1000 at 100 -> 1
    assert decision.approved and decision.size == D("1")
    layer = verdict(decision, "position_size")
    assert layer.action == "trim" and layer.passed
    assert layer.values["trimmed_from"] == "2" and layer.values["trimmed_to"] == "1"
    assert layer.values["limit_value"] == "100.00"
    [alert] = decision.alerts
    assert (alert.code, alert.level) == (AlertCode.RISK_LIMIT, AlertLevel.WARNING)
    assert alert.message == "position trimmed: BTCUSDT 2 → 1"


def test_trimming_counts_the_position_already_held_and_rounds_down():
    pf = portfolio("1000", pos(qty="0.3", last="100"))  # equity 1030, cap 103
    decision = run(sig=buy("1"), pf=pf)
    assert decision.size == D("0.73")
    pf = portfolio("1000", pos(qty="0.3", last="100"))
    book = market(bids=((D("299.9"), D("1")),), asks=((D("300"), D("1")),), last=D("300"))
    decision = run(sig=buy("1"), pf=pf, mk=book)
    # the holding is re-marked at 300: equity 1090, (0.1 x 1090 / 300) - 0.3, rounded down
    assert decision.size == D("0.063333333333333333")


def test_an_entry_with_no_room_left_is_rejected():
    pf = portfolio("900", pos(qty="1", last="100"))  # already at 10 %
    decision = run(sig=buy("0.1"), pf=pf)
    assert decision.rejected_by == "position_size" and len(decision.verdicts) == 5
    assert verdict(decision, "position_size").action == "reject"


def test_a_sell_is_clipped_to_the_position():
    decision = run(sig=sell("2"), pf=portfolio("950", pos()))
    assert decision.approved and decision.size == D("0.5")
    layer = verdict(decision, "position_size")
    assert layer.action == "trim"
    assert layer.values["requested"] == "2" and layer.values["size"] == "0.5"
    assert decision.alerts == ()


def test_a_sell_without_a_position_is_rejected_without_pricing_it():
    state = RiskState(stale_paused=True)
    for sig in (sell("1"), signal(Side.SELL, "1")):
        decision = run(sig=sig, mk=market(bids=()), state=state)
        assert decision.rejected_by == "position_size"
        assert [v.name for v in decision.verdicts] == ["daily_drawdown", "position_size"]
        assert decision.verdicts[0].action == "pass"
        assert decision.verdicts[1].values["reason"] == "long-only: no position to sell"
        assert decision.state == state and decision.alerts == ()


def test_a_sell_without_a_position_still_halts_on_a_drawdown_breach():
    decision = run(sig=sell("1"), pf=portfolio("900", day_start="1000"))
    assert decision.rejected_by == "daily_drawdown"
    assert decision.verdicts[0].action == "halt"
    assert halt_kind(decision.state) == "drawdown"


def test_a_sell_not_flagged_as_exit_still_reduces_a_position():
    decision = run(sig=signal(Side.SELL, "0.2"), pf=portfolio("950", pos()))
    assert decision.approved and decision.size == D("0.2") and decision.stop_price is None


# Layer 6: stop-loss ----------------------------------------------------------------------------


def test_an_approved_entry_gets_a_stop_below_the_estimated_fill():
    asks = ((D("100"), D("0.2")), (D("100.5"), D("10")))
    decision = run(sig=buy("0.4"), mk=market(asks=asks))  # avg 100.25
    assert decision.stop_price == D("100.25") * D("0.98") == D("98.2450")
    layer = verdict(decision, "stop_loss")
    assert layer.action == "set_stop"
    assert layer.values["estimated_entry_price"] == "100.25"
    assert layer.values["stop_price"] == "98.2450"


def test_the_stop_uses_the_fill_of_the_trimmed_size():
    asks = ((D("100"), D("1")), (D("100.5"), D("10")))
    decision = run(sig=buy("1.5"), mk=market(asks=asks))
    assert decision.size < 1
    assert decision.stop_price == D("98.00")


def test_stop_price():
    assert stop_price(D("200"), LIMITS) == D("196.00")


def test_stop_loss_exits_sell_whole_positions_at_or_below_the_stop():
    pf = portfolio(
        "0",
        pos("BBBUSDT", qty="2", entry="100"),
        pos("AAAUSDT", qty="3", entry="50"),
        pos("CCCUSDT", qty="1", entry="10"),
        pos("DDDUSDT", qty="1", entry="10"),
    )
    prices = {"AAAUSDT": D("49"), "BBBUSDT": D("98"), "CCCUSDT": D("9.81")}  # DDD: no price
    exits = stop_loss_exits(pf, prices, LIMITS, NOW)
    assert [(s.symbol, s.size) for s in exits] == [("AAAUSDT", D("3")), ("BBBUSDT", D("2"))]
    for exit_signal in exits:
        assert exit_signal.direction is Side.SELL and exit_signal.is_exit
        assert exit_signal.signal_strength == 1 and exit_signal.timestamp == NOW
        assert exit_signal.reason.startswith("stop-loss")
    assert exits[1].price == D("98")


def test_a_stop_loss_exit_passes_and_raises_a_warning():
    pf = portfolio("0", pos(qty="0.5", entry="110", last="100"))
    [exit_signal] = stop_loss_exits(pf, {SYM: D("100")}, LIMITS, NOW)
    decision = run(sig=exit_signal, pf=pf)
    assert decision.approved and decision.size == D("0.5") and decision.stop_price is None
    assert len(decision.verdicts) == 6
    assert verdict(decision, "stop_loss").action == "pass (exit)"
    [alert] = decision.alerts
    assert (alert.code, alert.level) == (AlertCode.RISK_LIMIT, AlertLevel.WARNING)
    assert "stop-loss" in alert.message


def test_a_stop_loss_exit_goes_through_even_while_halted():
    pf = portfolio("0", pos(qty="0.5", entry="110", last="100"))
    [exit_signal] = stop_loss_exits(pf, {SYM: D("100")}, LIMITS, NOW)
    stopped = halt(RiskState(), "ops", NOW)
    assert run(sig=exit_signal, pf=pf, state=stopped).approved


def test_trip_breaker_can_be_used_by_execution_too():
    state, alerts = trip_breaker(RiskState(), LIMITS, NOW, "fill slippage 2 % > 1 %")
    assert state.breaker_trips == 1 and state.breaker_paused_until == NOW + timedelta(seconds=60)
    [alert] = alerts
    assert (alert.code, alert.level) == (AlertCode.CIRCUIT_BREAKER, AlertLevel.WARNING)
    assert "fill slippage" in alert.message and alert.symbol is None
    state, alerts = trip_breaker(replace(state, breaker_trips=10), LIMITS, NOW, "again", SYM)
    assert halt_kind(state) == "circuit_breaker" and len(alerts) == 2
    drawdown = replace(run(pf=portfolio("940", day_start="1000")).state, breaker_trips=10)
    state, alerts = trip_breaker(drawdown, LIMITS, NOW, "again")
    assert halt_kind(state) == "drawdown" and len(alerts) == 1


def test_freshness_check_without_signals_pauses_once_and_resumes():
    from app.config import load_settings
    from app.domain.risk import check_freshness

    limits = RiskLimits.from_settings(load_settings(env_file=None))
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    state, alerts = check_freshness(RiskState(), now - timedelta(seconds=31), limits, now)
    assert state.stale_paused and len(alerts) == 1
    assert alerts[0].code is AlertCode.DATA_STALE and alerts[0].level is AlertLevel.WARNING
    again, alerts = check_freshness(state, now - timedelta(seconds=60), limits, now)
    assert again.stale_paused and alerts == ()
    fresh, alerts = check_freshness(again, now - timedelta(seconds=2), limits, now)
    assert not fresh.stale_paused and alerts == ()
    nothing, alerts = check_freshness(RiskState(), None, limits, now)
    assert nothing.stale_paused and "no market data" in alerts[0].message
