"""The streamer's pure parts, part 2: channel names and answers, backoff bounds, the trigger
rules and their ids, the debounce cooldown, candles closing, stored records, settings."""

from __future__ import annotations

import logging
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.exchange.proto import BookTicker, Deal, Kline, MiniTicker
from app.stream import channels
from app.stream.backoff import backoff_bound, backoff_delay
from app.stream.config import StreamSettings, from_settings, parse_trigger_kinds
from app.stream.market import SymbolLive
from app.stream.records import BookState, DealState, KlineState, MiniTickerState
from app.stream.triggers import Cooldown, Trigger, TriggerRules

pytestmark = pytest.mark.unit

BLOCKED = "Not Subscribed successfully! [{}].  Reason\uff1a Blocked! "  # MEXC's full-width colon
T0 = 1_760_000_040_000  # a minute start


# ---- channels -------------------------------------------------------------------------------


def test_channel_names_are_mexcs() -> None:
    assert channels.MINI_TICKERS == "spot@public.miniTickers.v3.api.pb@UTC+8"
    assert channels.symbol_channels("BTCUSDT") == (
        "spot@public.aggre.bookTicker.v3.api.pb@100ms@BTCUSDT",
        "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT",
        "spot@public.kline.v3.api.pb@BTCUSDT@Min1",
    )


@pytest.mark.parametrize(
    ("name", "kind", "symbol"),
    [
        (channels.MINI_TICKERS, "miniTickers", None),
        (channels.book_ticker("ETHUSDT"), "bookTicker", "ETHUSDT"),
        (channels.deals("ETHUSDT"), "deals", "ETHUSDT"),
        (channels.kline("ETHUSDT"), "kline", "ETHUSDT"),
        ("spot@public.limit.depth.v3.api.pb@ETHUSDT@5", "other", None),
        ("garbage", "other", None),
    ],
)
def test_parse_channel(name: str, kind: str, symbol: str | None) -> None:
    assert channels.parse(name) == channels.ChannelName(kind, symbol)


def test_parse_answers_as_mexc_sends_them() -> None:
    a, b, c = channels.symbol_channels("BTCUSDT")
    assert channels.parse_answer({"id": 0, "code": 0, "msg": "PONG"}).pong
    ok = channels.parse_answer({"id": 0, "code": 0, "msg": f"{a},{b}"})
    assert ok.accepted == (a, b) and ok.refused == ()
    refused = channels.parse_answer({"id": 0, "code": 0, "msg": BLOCKED.format(c)})
    assert refused.accepted == () and refused.refused == (c,)
    assert "Blocked" in refused.message
    both = channels.parse_answer(
        {"id": 0, "code": 0, "msg": f"Subscribed successful! [{a},{b}]. {BLOCKED.format(c)}"}
    )
    assert both.accepted == (a, b) and both.refused == (c,)
    error = channels.parse_answer({"id": 0, "code": 1, "msg": "Invalid request"})
    assert error.accepted == error.refused == () and error.code == 1


# ---- backoff ----------------------------------------------------------------------------------


@given(st.integers(0, 200), st.floats(0.01, 10), st.floats(1, 300), st.floats(0, 1))
def test_backoff_stays_within_full_jitter_bounds(
    attempt: int, base: float, cap: float, u: float
) -> None:
    bound = backoff_bound(attempt, base, cap)
    assert bound == min(cap, base * 2 ** min(attempt, 62))
    delay = backoff_delay(attempt, base, cap, lambda lo, hi: lo + u * (hi - lo))
    assert 0 <= delay <= bound <= cap


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_bound(n, 0.5, 30) for n in range(9)] == [
        0.5,
        1,
        2,
        4,
        8,
        16,
        30,
        30,
        30,
    ]
    with pytest.raises(ValueError):
        backoff_bound(-1, 0.5, 30)


# ---- triggers ---------------------------------------------------------------------------------


def rules(kinds: str = "move,candle,stop") -> TriggerRules:
    return TriggerRules(parse_trigger_kinds(kinds), Decimal("0.005"), 60_000)


def test_move_fires_from_the_reference_and_only_past_the_threshold() -> None:
    r = rules()
    assert r.on_price("BTCUSDT", Decimal("100"), T0) == []  # the first price is the reference
    assert r.on_price("BTCUSDT", Decimal("100.49"), T0 + 1) == []
    [fired] = r.on_price("BTCUSDT", Decimal("99.5"), T0 + 2)
    assert fired.kind == "move" and fired.task_id == f"tick-move-BTCUSDT-{T0 // 60_000}"
    assert "-0.50 %" in fired.reason and fired.kwargs == {"trigger": "tick", "reason": fired.reason}
    r.set_reference("BTCUSDT", Decimal("99.5"))  # what the streamer does once it is sent
    assert r.on_price("BTCUSDT", Decimal("99.6"), T0 + 3) == []


def test_stop_fires_at_or_below_the_stop_only() -> None:
    r = rules("stop")
    r.stops = {"ETHUSDT": Decimal("2000")}
    assert r.on_price("ETHUSDT", Decimal("2000.01"), T0) == []
    [at] = r.on_price("ETHUSDT", Decimal("2000"), T0 + 5)
    [below] = r.on_price("ETHUSDT", Decimal("1990"), T0 + 6)
    assert at.task_id == below.task_id == f"tick-stop-ETHUSDT-{T0 // 60_000}"
    assert "reached its stop 2000" in at.reason
    # The next bucket is another run (the position is still there a minute later).
    [later] = r.on_price("ETHUSDT", Decimal("1990"), T0 + 60_000)
    assert later.task_id != at.task_id


def test_candle_trigger_is_one_per_minute_whatever_the_symbol() -> None:
    r = rules()
    a = r.on_candle_closed("BTCUSDT", T0)
    b = r.on_candle_closed("ETHUSDT", T0)
    assert a is not None and b is not None and a.task_id == b.task_id
    assert a.task_id == f"tick-candle-ALL-{T0 // 60_000}"
    assert rules("move,stop").on_candle_closed("BTCUSDT", T0) is None


def test_disabled_kinds_do_not_fire() -> None:
    r = rules("")
    r.stops = {"ETHUSDT": Decimal("2000")}
    r.on_price("ETHUSDT", Decimal("3000"), T0)
    assert r.on_price("ETHUSDT", Decimal("1000"), T0 + 1) == []


def test_task_ids_fit_the_run_key_column() -> None:
    longest = Trigger("candle", "A" * 30, 10**12, "")
    assert len(longest.task_id) <= 64  # market_data_runs.run_key is String(64)


def test_parse_trigger_kinds() -> None:
    assert parse_trigger_kinds(" Move, stop ") == {"move", "stop"}
    assert parse_trigger_kinds("") == frozenset()
    with pytest.raises(ValueError, match="unknown stream trigger tick"):
        parse_trigger_kinds("move,tick")


def test_cooldown_lets_one_try_through_per_period() -> None:
    now = [0.0]
    cooldown = Cooldown(1.0, clock=lambda: now[0])
    assert cooldown.allow("a") and not cooldown.allow("a") and cooldown.allow("b")
    now[0] = 0.99
    assert not cooldown.allow("a")
    now[0] = 1.0
    assert cooldown.allow("a")


# ---- candles and deals ------------------------------------------------------------------------


def kline(open_ms: int, o: str, h: str, low: str, c: str, v: str, q: str) -> Kline:
    d = Decimal
    return Kline(
        "Min1", open_ms // 1000, open_ms // 1000 + 60, d(o), d(c), d(h), d(low), d(v), d(q)
    )


def deal(price: str, qty: str, t: int, tid: str = "1") -> DealState:
    return DealState.of(Deal(Decimal(price), Decimal(qty), 1, t, tid))


def test_a_closed_candle_is_its_last_frame_completed_with_the_deals_after_it() -> None:
    live = SymbolLive("BTCUSDT")
    first = live.on_kline(
        KlineState.of(kline(T0, "10", "11", "9", "10.5", "2", "21"), T0 + 50_000), 1
    )
    assert first is not None and first.closed is None and first.minute_closed is None
    live.on_deals(
        [
            deal("10.4", "1", T0 + 40_000, "a"),  # already in the frame
            deal("11.5", "1", T0 + 55_000, "b"),
            deal("10.8", "2", T0 + 59_999, "c"),
            deal("10.9", "1", T0 + 60_000, "d"),  # the next minute
        ]
    )
    update = live.on_kline(
        KlineState.of(kline(T0 + 60_000, "10.9", "10.9", "10.9", "10.9", "1", "10.9"), T0 + 61_000),
        1,
    )
    assert update is not None and update.minute_closed == T0
    closed = update.closed
    assert closed is not None and closed.closed and closed.complete
    assert (closed.open, closed.high, closed.low, closed.close) == (
        Decimal("10"),
        Decimal("11.5"),
        Decimal("9"),
        Decimal("10.8"),
    )
    assert closed.volume == Decimal("5") and closed.quote_volume == Decimal("21") + Decimal(
        "11.5"
    ) + Decimal("21.6")
    assert live.last_price == Decimal("10.9")


def test_a_candle_seen_across_a_reconnect_is_marked_incomplete() -> None:
    live = SymbolLive("BTCUSDT")
    live.on_kline(KlineState.of(kline(T0, "1", "1", "1", "1", "1", "1"), T0 + 30_000), 1)
    update = live.on_kline(
        KlineState.of(kline(T0 + 60_000, "1", "1", "1", "1", "1", "1"), T0 + 70_000), 2
    )
    assert update is not None and update.closed is not None and not update.closed.complete
    # A late frame of an older minute is ignored.
    assert (
        live.on_kline(KlineState.of(kline(T0, "1", "1", "1", "1", "1", "1"), T0 + 59_000), 2)
        is None
    )


def test_price_history_takes_one_point_a_second() -> None:
    live = SymbolLive("BTCUSDT")
    points = live.on_deals(
        [deal("1", "1", T0 + 10), deal("2", "1", T0 + 900), deal("3", "1", T0 + 1_000)]
    )
    assert points == [(T0 + 10, Decimal("1")), (T0 + 1_000, Decimal("3"))]


# ---- records ------------------------------------------------------------------------------------


def test_records_round_trip_through_json() -> None:
    d = Decimal
    mini = MiniTickerState.of(
        MiniTicker(
            "BTCUSDT",
            d("1.5"),
            d("0.01"),
            d("0.02"),
            d("2"),
            d("1"),
            d("100"),
            d("70"),
            None,
            None,
            None,
            None,
        ),
        T0,
        T0 + 3,
    )
    assert MiniTickerState.from_json("BTCUSDT", mini.to_json()) == mini
    book = BookState.of(
        "BTCUSDT", BookTicker(d("1.1"), d("2"), d("1.2"), d("3"), 77, T0), T0, T0 + 1
    )
    assert BookState.from_json("BTCUSDT", book.to_json()) == book
    assert book.mid == d("1.15")
    k = KlineState.of(kline(T0, "1", "2", "0.5", "1.5", "10", "15.5"), T0 + 1)
    assert KlineState.from_json(k.to_json()) == k
    dl = deal("1.25", "0.5", T0, "x9")
    assert DealState.from_json(dl.to_json()) == dl and dl.side == "buy"


# ---- settings -----------------------------------------------------------------------------------


def test_settings_default_until_declared_and_out_of_range_falls_back(caplog) -> None:
    assert from_settings(SimpleNamespace()) == StreamSettings()
    given = SimpleNamespace(
        stream_max_subscriptions=40,
        stream_move_trigger_pct=Decimal("0.01"),
        stream_triggers="stop",
        redis_key_prefix="p:",
    )
    with caplog.at_level(logging.WARNING, logger="app.stream.config"):
        s = from_settings(given)
    assert s.stream_max_subscriptions == 30  # MEXC's limit: 40 is refused with a WARNING
    assert "STREAM_MAX_SUBSCRIPTIONS=40" in caplog.text
    assert s.stream_move_trigger_pct == Decimal("0.01")
    assert s.trigger_kinds == {"stop"} and s.redis_key_prefix == "p:"


# ---- what the market-data stage writes --------------------------------------------------------


class FakeRedis:
    """Just enough of a redis client for set_watched / set_stops (no server needed)."""

    def __init__(self) -> None:
        self.data: dict[str, object] = {}

    def set(self, key: str, value: str, ex: int | None = None) -> None:
        self.data[key] = value

    def pipeline(self, transaction: bool = True) -> FakeRedis:
        return self

    def delete(self, key: str) -> None:
        self.data.pop(key, None)

    def hset(self, key: str, mapping: dict[str, str]) -> None:
        self.data[key] = dict(mapping)

    def expire(self, key: str, seconds: int) -> None:
        pass

    def execute(self) -> None:
        pass


def test_set_watched_and_set_stops_normalise_and_refuse_nonsense() -> None:
    from app.stream import keys
    from app.stream.state import parse_stops, parse_watched, set_stops, set_watched

    r = FakeRedis()
    set_watched(r, "p:", ["ethusdt", "BTCUSDT", "BTCUSDT"], prices={"ethusdt": 2000}, at_ms=5)
    watched = parse_watched(r.data[keys.watched("p:")])
    assert watched is not None and watched.symbols == ("BTCUSDT", "ETHUSDT")
    assert watched.prices == {"ETHUSDT": Decimal("2000")} and watched.at_ms == 5
    set_stops(r, "p:", {"ethusdt": Decimal("1900.5")})
    assert parse_stops(r.data[keys.stops("p:")]) == {"ETHUSDT": Decimal("1900.5")}
    with pytest.raises(ValueError, match="BTC/USDT"):
        set_watched(r, "p:", ["BTC/USDT"])
    with pytest.raises(ValueError, match="not a positive price"):
        set_stops(r, "p:", {"BTCUSDT": Decimal("-1")})
    set_stops(r, "p:", {})
    assert keys.stops("p:") not in r.data
