"""Spreads, depth and activity by liquidity tier, in the ranges docs/SIMULATOR.md documents."""

from __future__ import annotations

import itertools
from collections import Counter
from decimal import Decimal

import pytest

from app.exchange.simulator.market import SimulatedMarket
from app.exchange.simulator.universe import MAJOR, MID, SMALL

pytestmark = pytest.mark.unit

NOW = 1_760_000_000_000
MINUTE = 60_000
MARKET = SimulatedMarket(300, 5)
# documented: spread (ticks for majors, bp otherwise) and top-of-book size in USD at any price
SPREAD_RANGE = {MAJOR: (1, 3), MID: (1.5, 8.0), SMALL: (10.0, 80.0)}
TOP_USD = {MAJOR: (10_000, 170_000), MID: (1_000, 35_000), SMALL: (50, 3_500)}
TRADES_PER_MINUTE = {MAJOR: (4, 8), MID: (2, 4), SMALL: (1, 2)}
QUOTE_USD = {"USDT": 1, "USDC": 1}


def _moments(count: int, step: int) -> list[int]:
    return [NOW + i * step for i in range(count)]


def test_btcusdt_is_one_tick_wide_most_of_the_time() -> None:
    tick = Decimal(1).scaleb(-MARKET.spec("BTCUSDT").quote_prec)
    assert tick == Decimal("0.01")  # MEXC's BTCUSDT price step
    widths: Counter[Decimal] = Counter()
    for t in _moments(600, 7_001):  # ~70 minutes, at moments unrelated to the 5 s buckets
        book = MARKET.book_ticker("BTCUSDT", t)
        widths[(Decimal(book["askPrice"]) - Decimal(book["bidPrice"])) / tick] += 1
    assert widths[Decimal(1)] >= 0.8 * 600
    assert set(widths) <= {Decimal(1), Decimal(2), Decimal(3)}
    assert len(widths) > 1  # and now and then wider


def test_every_tier_is_in_its_documented_ranges() -> None:
    tiers = Counter(MARKET.spec(s).tier for s in MARKET.symbols)
    assert all(tiers[t] >= 5 for t in (MAJOR, MID, SMALL)), tiers
    for symbol in MARKET.symbols:
        spec = MARKET.spec(symbol)
        if spec.quote_asset not in QUOTE_USD:
            continue  # BTC-quoted pairs: sizes are in BTC
        lo, hi = SPREAD_RANGE[spec.tier]
        top_lo, top_hi = TOP_USD[spec.tier]
        tick = Decimal(1).scaleb(-spec.quote_prec)
        for t in _moments(12, 7 * 3_600_000 + 13_001):  # across three and a half days
            book = MARKET.book_ticker(symbol, t)
            bid, ask = Decimal(book["bidPrice"]), Decimal(book["askPrice"])
            if spec.tier == MAJOR:
                assert lo <= (ask - bid) / tick <= hi, (symbol, bid, ask)
            else:
                bp = (ask - bid) / ((ask + bid) / 2) * 10_000
                assert lo <= bp <= hi, (symbol, spec.tier, bp)
            for price, qty in ((bid, book["bidQty"]), (ask, book["askQty"])):
                assert top_lo <= price * Decimal(qty) <= top_hi, (symbol, price, qty)


def test_levels_lie_on_the_tier_grid() -> None:
    for symbol in ("BTCUSDT", "ADAUSDT", MARKET.usdt_symbols[-1]):
        spec = MARKET.spec(symbol)
        depth = MARKET.depth(symbol, 50, NOW)
        tick = Decimal(1).scaleb(-spec.quote_prec)
        for side in ("bids", "asks"):
            prices = [Decimal(p) / tick for p, _ in depth[side]]
            steps = {abs(b - a) for a, b in itertools.pairwise(prices[1:])}
            assert steps == {spec.level_step_ticks}, (symbol, side, steps)
        if spec.tier == MAJOR:  # a major's book is dense: every tick
            assert spec.level_step_ticks == 1


def test_trade_activity_and_volume_follow_the_tier() -> None:
    for symbol in MARKET.usdt_symbols[:40]:
        spec = MARKET.spec(symbol)
        rows = MARKET.klines(symbol, "1m", limit=500, now_ms=NOW)[:-1]
        trades = MARKET.trades(symbol, 1000, NOW)
        per_minute = len([t for t in trades if t["time"] >= rows[-120][0]]) / 120
        lo, hi = TRADES_PER_MINUTE[spec.tier]
        assert 0.6 * lo <= per_minute <= 1.5 * hi, (symbol, spec.tier, per_minute)
        assert all(Decimal(r[5]) > 0 for r in rows)  # every minute trades
