"""A deterministic simulated MEXC spot market: no I/O and no wall clock.

Every answer is a pure function of (n_symbols, seed, arguments, now_ms), so two instances built
with the same arguments answer identically, in any process. Output dicts and lists use MEXC's
spot v3 JSON shapes: prices and quantities as strings, times as int milliseconds.

Price model: price(t) = base * exp(sum of three sinusoids + per-minute hashed noise), with
per-symbol amplitudes, periods and phases drawn from random.Random(f"{seed}:{symbol}").
About a fifth of the symbols are "wild" (24h moves of roughly 5-25 %), the rest move little.

Scenarios (see scenarios.py) override one symbol from a moment on: the seed-model price at
time t is multiplied by price_factor * (1 + trend_pct_per_min / 100 * minutes since the
start) for every t >= started_at_ms, the half-spread by spread_factor and the book
quantities by depth_factor. Each symbol keeps a timeline of scenarios, so replacing one keeps
the earlier one's effect on past candles; clearing removes the timeline (back to the seed
model). Answers stay a pure function of (n_symbols, seed, scenario timelines, arguments, now_ms).

Kline alignment: UTC. 1d candles open at 00:00 UTC, 1W candles on Monday 00:00 UTC, and 1M
candles are calendar months (1st of the month, 00:00 UTC). closeTime = next openTime - 1.
"""

from __future__ import annotations

import calendar
import hashlib
import math
import random
import threading
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, NamedTuple

from app.domain.market import KLINE_INTERVALS
from app.exchange.simulator.scenarios import Scenario, scenario_from_fields

MINUTE_MS = 60_000
DAY_MS = 86_400_000
KLINE_DEFAULT_LIMIT = 500
KLINE_MAX_LIMIT = 1000
DEPTH_DEFAULT_LIMIT = 100
DEPTH_MAX_LIMIT = 5000
TRADES_DEFAULT_LIMIT = 500
TRADES_MAX_LIMIT = 1000

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_TWO_PI = 2.0 * math.pi
_TICKER_SAMPLE_MS = 30 * MINUTE_MS  # 48 high/low samples over a 24h window
_KLINE_SAMPLES = 12  # price samples per candle, open and close included
_WEEK_OFFSET_MS = 4 * DAY_MS  # 1970-01-01 was a Thursday; weekly candles open on Mondays
_ONE = Decimal(1)
_PCT_QUANTUM = Decimal("0.0001")
_MAX_HALF_SPREAD = 0.9  # a widened spread never pushes the bid below 10 % of the mid
_MIN_TREND_MULTIPLIER = 0.001  # a falling trend bottoms out at 0.1 % of the price

# (base asset, full name, typical USDT price, typical 24h quote volume in USDT)
_KNOWN_ASSETS: tuple[tuple[str, str, float, float], ...] = (
    ("BTC", "Bitcoin", 60000.0, 1.5e9),
    ("ETH", "Ethereum", 3000.0, 8e8),
    ("SOL", "Solana", 150.0, 3e8),
    ("XRP", "XRP", 0.5, 2e8),
    ("DOGE", "Dogecoin", 0.12, 1.5e8),
    ("ADA", "Cardano", 0.45, 6e7),
    ("TRX", "TRON", 0.12, 4e7),
    ("LINK", "Chainlink", 14.0, 5e7),
    ("AVAX", "Avalanche", 30.0, 4e7),
    ("DOT", "Polkadot", 6.5, 3e7),
    ("LTC", "Litecoin", 80.0, 3e7),
    ("BCH", "Bitcoin Cash", 400.0, 2e7),
    ("PEPE", "Pepe", 0.00001234, 9e7),
    ("SHIB", "Shiba Inu", 0.0000178, 3e7),
    ("UNI", "Uniswap", 8.0, 1.5e7),
    ("NEAR", "NEAR Protocol", 5.0, 1.5e7),
    ("APT", "Aptos", 9.0, 1e7),
    ("ARB", "Arbitrum", 0.8, 1e7),
    ("OP", "Optimism", 1.7, 8e6),
    ("SUI", "Sui", 1.2, 2e7),
    ("TON", "Toncoin", 5.5, 1e7),
    ("ATOM", "Cosmos", 7.0, 6e6),
    ("FIL", "Filecoin", 4.5, 5e6),
    ("ETC", "Ethereum Classic", 25.0, 5e6),
    ("XLM", "Stellar", 0.1, 5e6),
    ("MX", "MX Token", 3.2, 4e6),
)
_KNOWN_BASES = {a[0] for a in _KNOWN_ASSETS}
_RESERVED_BASES = _KNOWN_BASES | {"USDT", "USDC", "USD", "BUSD", "DAI"}

# Pairs that are not USDT-quoted and not counted in n_symbols: (base, quote, price, quote vol).
_EXTRA_PAIRS: tuple[tuple[str, str, float, float], ...] = (
    ("BTC", "USDC", 60000.0, 2e8),
    ("ETH", "USDC", 3000.0, 8e7),
    ("ETH", "BTC", 0.05, 300.0),
    ("SOL", "BTC", 0.0025, 40.0),
)

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class SimulatorError(ValueError):
    """A request the simulated exchange rejects; `code` and `msg` are MEXC's."""

    code = -1121
    msg = "Invalid request."

    def body(self) -> dict[str, Any]:
        return {"msg": self.msg, "code": self.code, "_extend": None}


class InvalidSymbolError(SimulatorError):
    msg = "Invalid symbol."


class InvalidIntervalError(SimulatorError):
    msg = "Invalid interval."


def _mix64(x: int) -> int:
    """splitmix64 finaliser: a fast, well-distributed integer hash."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _unit(key: int, n: int) -> float:
    """A deterministic float in [0, 1) for (key, n)."""
    return _mix64((key + n * _GOLDEN) & _MASK) / 18446744073709551616.0


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _units_str(units: int, prec: int) -> str:
    """Exact decimal string of units * 10**-prec (units >= 0)."""
    if prec <= 0:
        return str(units)
    digits = str(units).rjust(prec + 1, "0")
    return f"{digits[:-prec]}.{digits[-prec:]}"


def _fmt(x: float, prec: int) -> str:
    """x rounded to prec decimal places (fixed notation, never exponent or float noise)."""
    return f"{x:.{prec}f}"


def _dec_str(d: Decimal) -> str:
    s = format(d, "f")
    return s[1:] if s.startswith("-") and d == 0 else s


class _Segment(NamedTuple):
    """One scenario of a symbol's timeline, with its numbers precomputed as floats."""

    start_ms: int
    scenario: Scenario
    price_factor: float
    trend_per_ms: float  # fraction of the price per millisecond
    spread_factor: float
    depth_factor: Decimal

    @classmethod
    def of(cls, scenario: Scenario) -> _Segment:
        assert scenario.started_at_ms is not None
        return cls(
            scenario.started_at_ms,
            scenario,
            float(scenario.price_factor),
            float(scenario.trend_pct_per_min) / 100.0 / MINUTE_MS,
            float(scenario.spread_factor),
            scenario.depth_factor,
        )

    def multiplier(self, t_ms: int) -> float:
        trend = 1.0 + self.trend_per_ms * (t_ms - self.start_ms)
        return self.price_factor * max(trend, _MIN_TREND_MULTIPLIER)


def _generated_base(index: int, taken: set[str]) -> str:
    attempt = 0
    while True:
        h = _stable_int(f"cdb-sim-asset:{index}:{attempt}")
        length = 3 + h % 3
        h //= 3
        name = ""
        for _ in range(length):
            name += _LETTERS[h % 26]
            h //= 26
        if name not in taken and name not in _RESERVED_BASES:
            return name
        attempt += 1


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """Static parameters of one simulated symbol."""

    symbol: str
    base_asset: str
    quote_asset: str
    full_name: str
    status: str
    spot_allowed: bool
    base_prec: int
    quote_prec: int
    base_price: float
    waves: tuple[tuple[float, float, float], ...]  # (amplitude, angular speed per ms, phase)
    noise_amp: float
    key: int
    volume_base: float  # mean 24h volume in base units
    volume_wave: tuple[float, float]  # (angular speed, phase) of the volume modulation
    half_spread: float
    level_step_ticks: int
    level0_units: int  # first book level quantity in base units * 10**base_prec
    update_id_base: int
    trade_gap_ms: int
    maker_commission: str
    taker_commission: str
    min_notional: str
    max_quote_amount: str
    max_quote_amount_market: str
    quote_volume_prec: int


def _precisions(price: float, base_usd: float) -> tuple[int, int]:
    """(base_prec, quote_prec): about six significant digits of price, quantity steps worth
    roughly a cent."""
    quote_prec = min(12, max(0, 5 - math.floor(math.log10(price))))
    base_prec = min(8, max(0, math.floor(math.log10(base_usd)) + 2))
    return base_prec, quote_prec


def _make_spec(
    seed: int,
    base: str,
    quote: str,
    full_name: str,
    price_hint: float,
    base_usd: float,
    quote_volume_hint: float,
    status: str,
    spot_allowed: bool,
    volatility: str | None,
) -> SymbolSpec:
    symbol = base + quote
    rng = random.Random(f"{seed}:{symbol}")
    base_price = price_hint * math.exp(rng.uniform(-0.15, 0.15))
    if volatility is None:
        roll = rng.random()
        volatility = "wild" if roll < 0.2 else ("normal" if roll < 0.7 else "calm")
    scale = {"calm": 0.25, "normal": 1.0, "wild": 3.0}[volatility]
    day = float(DAY_MS)
    long_period = rng.uniform(1.5, 4.0) if volatility == "wild" else rng.uniform(2.0, 7.0)
    waves = (
        (scale * rng.uniform(0.02, 0.05), _TWO_PI / (long_period * day), rng.uniform(0, _TWO_PI)),
        (
            scale * rng.uniform(0.004, 0.012),
            _TWO_PI / (rng.uniform(3.0, 12.0) * 3600_000),
            rng.uniform(0, _TWO_PI),
        ),
        (
            scale * rng.uniform(0.0008, 0.0025),
            _TWO_PI / (rng.uniform(7.0, 45.0) * MINUTE_MS),
            rng.uniform(0, _TWO_PI),
        ),
    )
    base_prec, quote_prec = _precisions(base_price, base_usd)
    volume_base = quote_volume_hint * math.exp(rng.uniform(-0.3, 0.3)) / base_price
    level0 = volume_base * rng.uniform(1e-5, 5e-5)
    level0_units = max(20, round(level0 * 10**base_prec))
    stable_quote = quote in ("USDT", "USDC")
    taker = rng.choices(["0.0005", "0.001", "0"], weights=[90, 6, 4])[0]
    return SymbolSpec(
        symbol=symbol,
        base_asset=base,
        quote_asset=quote,
        full_name=full_name,
        status=status,
        spot_allowed=spot_allowed,
        base_prec=base_prec,
        quote_prec=quote_prec,
        base_price=base_price,
        waves=waves,
        noise_amp=scale * 0.0008,
        key=_stable_int(f"{seed}:{symbol}"),
        volume_base=volume_base,
        volume_wave=(_TWO_PI / (rng.uniform(2.0, 5.0) * day), rng.uniform(0, _TWO_PI)),
        half_spread=math.exp(rng.uniform(math.log(0.00003), math.log(0.0005))),
        level_step_ticks=rng.randint(1, 3),
        level0_units=level0_units,
        update_id_base=rng.randrange(10**9, 3 * 10**10),
        trade_gap_ms=rng.choice([250, 1000, 3000, 10_000, 45_000]),
        maker_commission="0",
        taker_commission=taker,
        min_notional=("1" if rng.random() < 0.7 else "5") if stable_quote else "0.0001",
        max_quote_amount="2000000" if stable_quote else "30",
        max_quote_amount_market="100000" if stable_quote else "10",
        quote_volume_prec=2 if stable_quote else 8,
    )


class SimulatedMarket:
    """n_symbols USDT pairs plus a few non-USDT pairs, all a pure function of `seed`."""

    def __init__(self, n_symbols: int, seed: int) -> None:
        if n_symbols < 1:
            raise ValueError("n_symbols must be >= 1")
        self.n_symbols = n_symbols
        self.seed = seed
        bases: list[tuple[str, str, float, float]] = []
        taken: set[str] = set()
        for i in range(n_symbols):
            if i < len(_KNOWN_ASSETS):
                bases.append(_KNOWN_ASSETS[i])
                taken.add(_KNOWN_ASSETS[i][0])
            else:
                name = _generated_base(i, taken)
                taken.add(name)
                h = _stable_int(f"cdb-sim-hint:{name}")
                price = 10 ** (-7 + (h % 10_000) / 10_000 * 10.5)
                qvol = 10 ** (3.5 + ((h >> 16) % 10_000) / 10_000 * 4.0)
                bases.append((name, f"{name.title()} Token", price, qvol))
        non_online = self._pick_non_online(n_symbols, seed)
        specs: list[SymbolSpec] = []
        for i, (base, full_name, price, qvol) in enumerate(bases):
            status, spot_allowed = non_online.get(i, ("1", True))
            volatility = "normal" if i == 0 else None
            specs.append(
                _make_spec(
                    seed,
                    base,
                    "USDT",
                    full_name,
                    price,
                    price,
                    qvol,
                    status,
                    spot_allowed,
                    volatility,
                )
            )
        known = {a[0]: a for a in _KNOWN_ASSETS}
        for base, quote, price, qvol in _EXTRA_PAIRS:
            name, usd = known[base][1], known[base][2]
            specs.append(_make_spec(seed, base, quote, name, price, usd, qvol, "1", True, None))
        self._specs: dict[str, SymbolSpec] = {s.symbol: s for s in specs}
        self._order: list[str] = [s.symbol for s in specs]
        # symbol -> (start times, segments), both sorted. Copy-on-write: writers (under the
        # lock) replace the whole dict, so readers need no lock.
        self._timelines: dict[str, tuple[tuple[int, ...], tuple[_Segment, ...]]] = {}
        self._scenario_lock = threading.Lock()

    @staticmethod
    def _pick_non_online(n: int, seed: int) -> dict[int, tuple[str, bool]]:
        """A deterministic ~5 % of the USDT pairs (never the first three) are not tradable."""
        if n < 10:
            return {}
        rng = random.Random(f"{seed}:non-online")
        count = max(1, round(n * 0.05))
        picked = sorted(rng.sample(range(3, n), count))
        kinds = [("2", True), ("3", True), ("1", False)]
        return {idx: kinds[j % 3] for j, idx in enumerate(picked)}

    # ---- symbol universe -------------------------------------------------------------------

    @property
    def symbols(self) -> list[str]:
        """Every symbol, USDT pairs first (in listing order), then the extra pairs."""
        return list(self._order)

    @property
    def usdt_symbols(self) -> list[str]:
        return [s for s in self._order if self._specs[s].quote_asset == "USDT"]

    def has_symbol(self, symbol: str) -> bool:
        return symbol in self._specs

    def spec(self, symbol: str) -> SymbolSpec:
        try:
            return self._specs[symbol]
        except KeyError:
            raise InvalidSymbolError(symbol) from None

    def default_symbols(self) -> list[str]:
        """Symbols tradable through the API (status "1" and spot trading allowed)."""
        return [s for s in self._order if self._is_tradable(self._specs[s])]

    @staticmethod
    def _is_tradable(spec: SymbolSpec) -> bool:
        return spec.status == "1" and spec.spot_allowed

    # ---- scenarios -------------------------------------------------------------------------

    def set_scenario(self, symbol: str, *, started_at_ms: int, **fields: Any) -> Scenario:
        """Apply overrides (price_factor, spread_factor, depth_factor, trend_pct_per_min) to
        `symbol` from started_at_ms on; ValueError names an unknown symbol or a bad field."""
        scenario = scenario_from_fields(symbol, started_at_ms=started_at_ms, **fields)
        return self.apply_scenario(scenario, started_at_ms)

    def apply_scenario(self, scenario: Scenario, started_at_ms: int) -> Scenario:
        """Add `scenario` to its symbol's timeline (stamped with started_at_ms unless it has a
        start); scenarios of that symbol starting at or after it are dropped."""
        if scenario.symbol not in self._specs:
            raise ValueError(f"unknown symbol {scenario.symbol!r}")
        scenario = scenario.stamped(started_at_ms)
        segment = _Segment.of(scenario)
        with self._scenario_lock:
            _, segments = self._timelines.get(scenario.symbol, ((), ()))
            kept = (*(s for s in segments if s.start_ms < segment.start_ms), segment)
            timelines = dict(self._timelines)
            timelines[scenario.symbol] = (tuple(s.start_ms for s in kept), kept)
            self._timelines = timelines
        return scenario

    def clear_scenarios(self, symbol: str | None = None) -> int:
        """Remove every scenario (or one symbol's): the symbol is the seed model again, past
        candles included. Returns the number of symbols cleared."""
        with self._scenario_lock:
            if symbol is None:
                n = len(self._timelines)
                self._timelines = {}
                return n
            if symbol not in self._timelines:
                return 0
            self._timelines = {k: v for k, v in self._timelines.items() if k != symbol}
            return 1

    def scenario(self, symbol: str) -> Scenario | None:
        """The latest scenario set for symbol (possibly starting in the future), or None."""
        timeline = self._timelines.get(symbol)
        return timeline[1][-1].scenario if timeline else None

    def scenarios(self) -> list[Scenario]:
        """The latest scenario of every symbol that has one, in listing order."""
        timelines = self._timelines
        return [timelines[s][1][-1].scenario for s in self._order if s in timelines]

    def _segment(self, symbol: str, t_ms: int) -> _Segment | None:
        timeline = self._timelines.get(symbol)
        if timeline is None:
            return None
        starts, segments = timeline
        i = bisect_right(starts, t_ms) - 1
        return segments[i] if i >= 0 else None

    # ---- the price model -------------------------------------------------------------------

    def _raw_price(self, spec: SymbolSpec, t_ms: int, state_ms: int | None = None) -> float:
        """The price at t_ms; scenarios are looked up at state_ms (default t_ms)."""
        x = 0.0
        for amp, omega, phase in spec.waves:
            x += amp * math.sin(omega * t_ms + phase)
        x += spec.noise_amp * (2.0 * _unit(spec.key, t_ms // MINUTE_MS) - 1.0)
        price = spec.base_price * math.exp(x)
        if not self._timelines:
            return price
        at = t_ms if state_ms is None else state_ms
        segment = self._segment(spec.symbol, at)
        if segment is None:
            return price
        return max(price * segment.multiplier(at), 10.0**-spec.quote_prec)

    def _half_spread(self, spec: SymbolSpec, t_ms: int) -> float:
        segment = self._segment(spec.symbol, t_ms) if self._timelines else None
        if segment is None:
            return spec.half_spread
        return min(spec.half_spread * segment.spread_factor, _MAX_HALF_SPREAD)

    def _depth_factor(self, spec: SymbolSpec, t_ms: int) -> Decimal | None:
        segment = self._segment(spec.symbol, t_ms) if self._timelines else None
        if segment is None or segment.depth_factor == _ONE:
            return None
        return segment.depth_factor

    def price(self, symbol: str, now_ms: int) -> Decimal:
        """The last traded price at now_ms, rounded to the symbol's tick."""
        spec = self.spec(symbol)
        return Decimal(_fmt(self._raw_price(spec, now_ms), spec.quote_prec))

    def _volume_24h(self, spec: SymbolSpec, now_ms: int) -> float:
        omega, phase = spec.volume_wave
        return spec.volume_base * (1.0 + 0.25 * math.sin(omega * now_ms + phase))

    def _top_of_book(self, spec: SymbolSpec, now_ms: int) -> tuple[int, int]:
        """(best bid, best ask) in ticks; bid <= last price <= ask and bid < ask."""
        mid = self._raw_price(spec, now_ms) * 10**spec.quote_prec
        half_spread = self._half_spread(spec, now_ms)
        bid = math.floor(mid * (1.0 - half_spread))
        ask = math.ceil(mid * (1.0 + half_spread))
        if ask <= bid:
            ask = bid + 1
        return max(bid, 1), max(ask, 2)

    def _level_units(self, spec: SymbolSpec, now_ms: int, side: int) -> int:
        """The best level's quantity in units, before any scenario depth_factor."""
        jitter = 0.6 + 0.8 * _unit(spec.key ^ side, now_ms // 1000)
        return max(1, round(spec.level0_units * jitter))

    def _top_units(self, spec: SymbolSpec, now_ms: int, side: int) -> int:
        return _scale_units(self._level_units(spec, now_ms, side), self._depth_factor(spec, now_ms))

    # ---- endpoints -------------------------------------------------------------------------

    def exchange_info(self, symbols: list[str] | None, now_ms: int) -> dict[str, Any]:
        names = self._order if symbols is None else symbols
        entries = [self._symbol_info(self.spec(s)) for s in names]
        return {
            "timezone": "CST",
            "serverTime": now_ms,
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": entries,
        }

    @staticmethod
    def _symbol_info(spec: SymbolSpec) -> dict[str, Any]:
        return {
            "symbol": spec.symbol,
            "status": spec.status,
            "baseAsset": spec.base_asset,
            "baseAssetPrecision": spec.base_prec,
            "quoteAsset": spec.quote_asset,
            "quotePrecision": spec.quote_prec,
            "quoteAssetPrecision": spec.quote_prec,
            "baseCommissionPrecision": spec.base_prec,
            "quoteCommissionPrecision": spec.quote_prec,
            "orderTypes": ["LIMIT", "MARKET", "LIMIT_MAKER"],
            "isSpotTradingAllowed": spec.spot_allowed,
            "isMarginTradingAllowed": False,
            "quoteAmountPrecision": spec.min_notional,
            "baseSizePrecision": _units_str(1, spec.base_prec),
            "permissions": ["SPOT"],
            "filters": [],
            "maxQuoteAmount": spec.max_quote_amount,
            "makerCommission": spec.maker_commission,
            "takerCommission": spec.taker_commission,
            "quoteAmountPrecisionMarket": spec.min_notional,
            "maxQuoteAmountMarket": spec.max_quote_amount_market,
            "fullName": spec.full_name,
            "tradeSideType": 1,
        }

    def ticker_price(self, symbol: str, now_ms: int) -> dict[str, Any]:
        spec = self.spec(symbol)
        return {"symbol": symbol, "price": _fmt(self._raw_price(spec, now_ms), spec.quote_prec)}

    def avg_price(self, symbol: str, now_ms: int) -> dict[str, Any]:
        """Mean price over the last 5 minutes (one sample per minute)."""
        spec = self.spec(symbol)
        samples = [self._raw_price(spec, now_ms - k * MINUTE_MS) for k in range(5)]
        return {"mins": 5, "price": _fmt(sum(samples) / 5, spec.quote_prec + 2)}

    def book_ticker(self, symbol: str, now_ms: int) -> dict[str, Any]:
        spec = self.spec(symbol)
        bid, ask = self._top_of_book(spec, now_ms)
        qp, bp = spec.quote_prec, spec.base_prec
        return {
            "symbol": symbol,
            "bidPrice": _units_str(bid, qp),
            "bidQty": _units_str(self._top_units(spec, now_ms, 1), bp),
            "askPrice": _units_str(ask, qp),
            "askQty": _units_str(self._top_units(spec, now_ms, 2), bp),
        }

    def depth(self, symbol: str, limit: int | None, now_ms: int) -> dict[str, Any]:
        """Order book snapshot: `limit` levels a side (default 100, clamped to 1..5000)."""
        spec = self.spec(symbol)
        n = DEPTH_DEFAULT_LIMIT if limit is None else max(1, min(limit, DEPTH_MAX_LIMIT))
        bid, ask = self._top_of_book(spec, now_ms)
        step = spec.level_step_ticks
        qp, bp = spec.quote_prec, spec.base_prec
        depth_factor = self._depth_factor(spec, now_ms)

        def side(best: int, direction: int, side_id: int) -> list[list[str]]:
            q0 = self._level_units(spec, now_ms, side_id)
            levels: list[list[str]] = []
            prev_q = 0
            for i in range(n):
                price = best + direction * i * step
                if price <= 0:
                    break
                q = max(prev_q + 1, round(q0 * (1.0 + 0.35 * i)))
                prev_q = q
                levels.append(
                    [_units_str(price, qp), _units_str(_scale_units(q, depth_factor), bp)]
                )
            return levels

        return {
            "lastUpdateId": spec.update_id_base + now_ms // 100,
            "bids": side(bid, -1, 1),
            "asks": side(ask, 1, 2),
        }

    def ticker_24h(self, symbol: str, now_ms: int) -> dict[str, Any]:
        """The rolling 24h ticker; high/low from 48 samples plus the open and last prices."""
        spec = self.spec(symbol)
        raw = self._raw_price
        open_ms = now_ms - DAY_MS
        first = -(-open_ms // _TICKER_SAMPLE_MS) * _TICKER_SAMPLE_MS
        samples = [raw(spec, t) for t in range(first, now_ms, _TICKER_SAMPLE_MS)]
        p_open = raw(spec, open_ms)
        p_last = raw(spec, now_ms)
        samples.append(p_open)
        samples.append(p_last)
        qp, bp = spec.quote_prec, spec.base_prec
        open_s = _fmt(p_open, qp)
        last_s = _fmt(p_last, qp)
        open_d = Decimal(open_s)
        change = Decimal(last_s) - open_d
        pct = (change / open_d).quantize(_PCT_QUANTUM) if open_d else Decimal("0.0000")
        volume = self._volume_24h(spec, now_ms)
        bid, ask = self._top_of_book(spec, now_ms)
        return {
            "symbol": symbol,
            "priceChange": _dec_str(change),
            "priceChangePercent": _dec_str(pct),
            "prevClosePrice": open_s,
            "lastPrice": last_s,
            "bidPrice": _units_str(bid, qp),
            "bidQty": _units_str(self._top_units(spec, now_ms, 1), bp),
            "askPrice": _units_str(ask, qp),
            "askQty": _units_str(self._top_units(spec, now_ms, 2), bp),
            "openPrice": open_s,
            "highPrice": _fmt(max(samples), qp),
            "lowPrice": _fmt(min(samples), qp),
            "volume": _fmt(volume, bp),
            "quoteVolume": _fmt(volume * sum(samples) / len(samples), spec.quote_volume_prec),
            "openTime": open_ms,
            "closeTime": now_ms,
            "count": None,
        }

    def trades(self, symbol: str, limit: int | None, now_ms: int) -> list[dict[str, Any]]:
        """Recent trades, oldest first (default 500, clamped to 1..1000)."""
        spec = self.spec(symbol)
        n = TRADES_DEFAULT_LIMIT if limit is None else max(1, min(limit, TRADES_MAX_LIMIT))
        gap = spec.trade_gap_ms
        qp, bp = spec.quote_prec, spec.base_prec
        out: list[dict[str, Any]] = []
        k = now_ms // gap
        while len(out) < n:
            h = _mix64((spec.key ^ (k * _GOLDEN)) & _MASK)
            t = k * gap + h % gap
            k -= 1
            if t > now_ms:
                continue
            if t < 0:
                break
            u = (h >> 20) % 1_000_000 / 1_000_000
            buyer_maker = bool(h >> 63)
            side = -1 if buyer_maker else 1
            p = self._raw_price(spec, t) * (1.0 + side * self._half_spread(spec, t))
            qty_units = max(1, round(spec.level0_units * 0.05 * math.exp(4.0 * u)))
            price_s = _fmt(p, qp)
            qty_s = _units_str(qty_units, bp)
            out.append(
                {
                    "id": None,
                    "price": price_s,
                    "qty": qty_s,
                    "quoteQty": _dec_str(Decimal(price_s) * Decimal(qty_s)),
                    "time": t,
                    "isBuyerMaker": buyer_maker,
                    "isBestMatch": True,
                }
            )
        out.reverse()
        return out

    # ---- klines ----------------------------------------------------------------------------

    def klines(
        self,
        symbol: str,
        interval: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int | None = None,
        *,
        now_ms: int,
    ) -> list[list[Any]]:
        """8-field MEXC kline rows, oldest first.

        With start_ms: candles with openTime >= start_ms; with end_ms: openTime < end_ms
        (exclusive); with neither: the latest `limit` candles, the last one still in progress.
        Never returns candles opening after now_ms. limit defaults to 500, clamped to 1..1000.
        """
        spec = self.spec(symbol)
        if interval not in KLINE_INTERVALS:
            raise InvalidIntervalError(interval)
        n = KLINE_DEFAULT_LIMIT if limit is None else max(1, min(limit, KLINE_MAX_LIMIT))
        current = _floor_open(now_ms, interval)
        opens: list[int] = []
        if start_ms is not None:
            o = _floor_open(start_ms, interval)
            if o < start_ms:
                o = _next_open(o, interval)
            while len(opens) < n and o <= current and (end_ms is None or o < end_ms):
                opens.append(o)
                o = _next_open(o, interval)
        else:
            o = current if end_ms is None else min(current, _floor_open(end_ms - 1, interval))
            while len(opens) < n and o >= 0:
                opens.append(o)
                o = _prev_open(o, interval)
            opens.reverse()
        return [self._candle(spec, interval, o, now_ms) for o in opens]

    def _candle(self, spec: SymbolSpec, interval: str, open_ms: int, now_ms: int) -> list[Any]:
        next_open = _next_open(open_ms, interval)
        length = next_open - open_ms
        raw = self._raw_price
        times = [open_ms + length * k // (_KLINE_SAMPLES - 1) for k in range(_KLINE_SAMPLES)]
        if next_open > now_ms:  # in progress: the samples seen so far, closing at now
            times = [t for t in times if t < now_ms] + [max(now_ms, open_ms)]
        # The close is sampled at next_open; a scenario starting there belongs to the next
        # candle, so scenarios are looked up no later than the candle's last millisecond.
        last_ms = next_open - 1
        prices = [raw(spec, t, min(t, last_ms)) for t in times]
        elapsed = min(length, max(0, now_ms - open_ms))
        factor = 0.3 + 1.4 * _unit(spec.key ^ length, open_ms)
        volume = spec.volume_base * factor * elapsed / DAY_MS
        qp = spec.quote_prec
        return [
            open_ms,
            _fmt(prices[0], qp),
            _fmt(max(prices), qp),
            _fmt(min(prices), qp),
            _fmt(prices[-1], qp),
            _fmt(volume, spec.base_prec),
            next_open - 1,
            _fmt(volume * sum(prices) / len(prices), spec.quote_volume_prec),
        ]


def _scale_units(units: int, factor: Decimal | None) -> int:
    """units * factor, rounded half-even, at least one unit."""
    if factor is None:
        return units
    scaled = (Decimal(units) * factor).to_integral_value(ROUND_HALF_EVEN)
    return max(1, int(scaled))


def _month_index(t_ms: int) -> int:
    d = datetime.fromtimestamp(t_ms // 1000, UTC)
    return (d.year - 1970) * 12 + d.month - 1


def _month_start(index: int) -> int:
    year, month0 = divmod(index, 12)
    return calendar.timegm((1970 + year, month0 + 1, 1, 0, 0, 0)) * 1000


def _floor_open(t_ms: int, interval: str) -> int:
    """openTime of the candle containing t_ms."""
    if interval == "1M":
        return _month_start(_month_index(t_ms))
    ms = KLINE_INTERVALS[interval] * 1000
    offset = _WEEK_OFFSET_MS if interval == "1W" else 0
    return (t_ms - offset) // ms * ms + offset


def _next_open(open_ms: int, interval: str) -> int:
    if interval == "1M":
        return _month_start(_month_index(open_ms) + 1)
    return open_ms + KLINE_INTERVALS[interval] * 1000


def _prev_open(open_ms: int, interval: str) -> int:
    if interval == "1M":
        return _month_start(_month_index(open_ms) - 1)
    return open_ms - KLINE_INTERVALS[interval] * 1000
