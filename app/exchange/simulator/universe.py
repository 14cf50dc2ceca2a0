"""The simulated symbol universe: which pairs exist and the static parameters of each.

n_symbols USDT pairs (26 well-known assets first, then generated ones) plus four pairs quoted
in USDC or BTC. Every parameter is drawn from random.Random(f"{seed}:{symbol}"), so a symbol
is the same whatever n_symbols is.

Liquidity tiers (by typical 24h quote volume in USD, see docs/SIMULATOR.md):

    tier   volume       spread                          level spacing  level size (USD)  trades/min
    major  >= 1e8       1 tick (>= 80 % of the time),   1 tick         20k - 100k        4 - 8
                        2-3 ticks otherwise
    mid    1e6 - 1e8    2 - 6 bp at the listing price   spread / 4     2k - 20k          2 - 4
    small  < 1e6        15 - 60 bp at the listing price spread / 6     100 - 2k          1 - 2

A spread is a whole number of ticks fixed per symbol (majors excepted), so its width in bp
drifts with the price: within 1.5 - 8 bp (mid) and 10 - 80 bp (small) at any price the seed
model reaches.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from app.exchange.simulator.hashing import stable_int

MINUTE_MS = 60_000
DAY_MS = 86_400_000
_TWO_PI = 2.0 * math.pi
_LISTING_FIRST_DAY = 18_993  # 2022-01-01
_MAJOR_LISTING_DAYS = 90
_LISTING_DAYS = 912  # ... 2024-06-30

MAJOR, MID, SMALL = "major", "mid", "small"
TIERS = (MAJOR, MID, SMALL)
MAJOR_MIN_VOLUME = 1e8
MID_MIN_VOLUME = 1e6

# Documented ranges (docs/SIMULATOR.md); the tests hold the simulator to them.
MID_SPREAD_BP = (2.0, 6.0)
SMALL_SPREAD_BP = (15.0, 60.0)
LEVEL_USD = {MAJOR: (20_000.0, 100_000.0), MID: (2_000.0, 20_000.0), SMALL: (100.0, 2_000.0)}
TRADES_PER_MIN = {MAJOR: (4.0, 8.0), MID: (2.0, 4.0), SMALL: (1.0, 2.0)}

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
_KNOWN = {a[0]: a for a in _KNOWN_ASSETS}
# MEXC's price ticks of the majors (quote decimals); others get about six significant digits.
_KNOWN_QUOTE_PREC = {"BTCUSDT": 2, "ETHUSDT": 2, "SOLUSDT": 2, "XRPUSDT": 5, "DOGEUSDT": 5}
_RESERVED_BASES = set(_KNOWN) | {"USDT", "USDC", "USD", "BUSD", "DAI"}

# Pairs not quoted in USDT and not counted in n_symbols: (base, quote, price, quote volume).
_EXTRA_PAIRS: tuple[tuple[str, str, float, float], ...] = (
    ("BTC", "USDC", 60000.0, 2e8),
    ("ETH", "USDC", 3000.0, 8e7),
    ("ETH", "BTC", 0.05, 300.0),
    ("SOL", "BTC", 0.0025, 40.0),
)
_QUOTE_USD = {"USDT": 1.0, "USDC": 1.0, "BTC": 60000.0}
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """Static parameters of one simulated symbol. Prices in ticks (10**-quote_prec), quantities
    in units (10**-base_prec)."""

    symbol: str
    base_asset: str
    quote_asset: str
    full_name: str
    status: str
    spot_allowed: bool
    base_prec: int
    quote_prec: int
    tier: str
    key: int
    symbol_id: str
    listed_at_ms: int  # 00:00 UTC of the listing day: no trade, candle or book before it
    base_price: float
    waves: tuple[tuple[float, float, float], ...]  # (amplitude, angular speed per ms, phase)
    noise_amp: float  # per-minute noise, interpolated linearly inside the minute
    micro_amp: float  # per-trade noise
    volume_wave: tuple[float, float]  # (angular speed per ms, phase) of the trading activity
    trade_rate: float  # mean trades per minute (>= 1: every minute opens with a print)
    trade_units: float  # mean trade quantity in units
    spread_ticks: int  # the natural spread (majors: 1, widening now and then)
    level_step_ticks: int
    level_units: int  # quantity of a top-of-book level before jitter
    update_id_base: int
    maker_commission: str
    taker_commission: str
    min_notional: str
    max_quote_amount: str
    max_quote_amount_market: str

    @property
    def tick_scale(self) -> float:
        return 10.0**self.quote_prec


def tier_of(volume_usd: float) -> str:
    if volume_usd >= MAJOR_MIN_VOLUME:
        return MAJOR
    return MID if volume_usd >= MID_MIN_VOLUME else SMALL


def _generated_base(index: int, taken: set[str]) -> str:
    attempt = 0
    while True:
        h = stable_int(f"cdb-sim-asset:{index}:{attempt}")
        length = 3 + h % 3
        h //= 3
        name = ""
        for _ in range(length):
            name += _LETTERS[h % 26]
            h //= 26
        if name not in taken and name not in _RESERVED_BASES:
            return name
        attempt += 1


def _precisions(price: float, base_usd: float) -> tuple[int, int]:
    """(base_prec, quote_prec): about six significant digits of price, quantity steps worth
    roughly a cent."""
    quote_prec = min(12, max(0, 5 - math.floor(math.log10(price))))
    base_prec = min(8, max(0, math.floor(math.log10(base_usd)) + 2))
    return base_prec, quote_prec


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


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
    long_period = rng.uniform(1.5, 4.0) if volatility == "wild" else rng.uniform(2.0, 7.0)
    waves = (
        (
            scale * rng.uniform(0.02, 0.05),
            _TWO_PI / (long_period * DAY_MS),
            rng.uniform(0, _TWO_PI),
        ),
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
    quote_prec = _KNOWN_QUOTE_PREC.get(symbol, quote_prec)
    quote_usd = _QUOTE_USD[quote]
    volume_usd = quote_volume_hint * quote_usd * math.exp(rng.uniform(-0.3, 0.3))
    tier = tier_of(quote_volume_hint * quote_usd)
    price_ticks = base_price * 10.0**quote_prec
    if tier == MAJOR:
        spread_ticks, step = 1, 1
    else:
        lo, hi = MID_SPREAD_BP if tier == MID else SMALL_SPREAD_BP
        spread_ticks = max(2, round(_log_uniform(rng, lo, hi) / 1e4 * price_ticks))
        step = max(1, spread_ticks // (4 if tier == MID else 6))
    unit_value = base_price * quote_usd * 10.0**-base_prec  # USD per quantity unit
    level_units = max(1, round(_log_uniform(rng, *LEVEL_USD[tier]) / unit_value))
    trade_rate = rng.uniform(*TRADES_PER_MIN[tier])
    trade_units = max(1.0, volume_usd / (1440.0 * trade_rate) / unit_value)
    listing_days = _MAJOR_LISTING_DAYS if tier == MAJOR else _LISTING_DAYS
    listed_day = _LISTING_FIRST_DAY + rng.randrange(listing_days)
    stable_quote = quote in ("USDT", "USDC")
    taker = rng.choices(["0.0005", "0.001", "0"], weights=[90, 6, 4])[0]
    key = stable_int(f"{seed}:{symbol}")
    return SymbolSpec(
        symbol=symbol,
        base_asset=base,
        quote_asset=quote,
        full_name=full_name,
        status=status,
        spot_allowed=spot_allowed,
        base_prec=base_prec,
        quote_prec=quote_prec,
        tier=tier,
        key=key,
        symbol_id=f"{stable_int(f'id:{seed}:{symbol}'):016x}{key:016x}",
        listed_at_ms=listed_day * DAY_MS,
        base_price=base_price,
        waves=waves,
        noise_amp=scale * 0.0008,
        micro_amp=scale * 0.00008,
        volume_wave=(_TWO_PI / (rng.uniform(2.0, 5.0) * DAY_MS), rng.uniform(0, _TWO_PI)),
        trade_rate=trade_rate,
        trade_units=trade_units,
        spread_ticks=spread_ticks,
        level_step_ticks=step,
        level_units=level_units,
        update_id_base=rng.randrange(10**9, 3 * 10**10) * 64,
        maker_commission="0",
        taker_commission=taker,
        min_notional=("1" if rng.random() < 0.7 else "5") if stable_quote else "0.0001",
        max_quote_amount="2000000" if stable_quote else "30",
        max_quote_amount_market="100000" if stable_quote else "10",
    )


def _pick_non_online(n: int, seed: int) -> dict[int, tuple[str, bool]]:
    """A deterministic ~5 % of the USDT pairs (never the first three) are not tradable."""
    if n < 10:
        return {}
    rng = random.Random(f"{seed}:non-online")
    count = max(1, round(n * 0.05))
    picked = sorted(rng.sample(range(3, n), count))
    kinds = [("2", True), ("3", True), ("1", False)]
    return {idx: kinds[j % 3] for j, idx in enumerate(picked)}


def build_universe(n_symbols: int, seed: int) -> list[SymbolSpec]:
    """n_symbols USDT pairs in listing order, then the extra pairs."""
    if n_symbols < 1:
        raise ValueError("n_symbols must be >= 1")
    bases: list[tuple[str, str, float, float]] = []
    taken: set[str] = set()
    for i in range(n_symbols):
        if i < len(_KNOWN_ASSETS):
            bases.append(_KNOWN_ASSETS[i])
            taken.add(_KNOWN_ASSETS[i][0])
        else:
            name = _generated_base(i, taken)
            taken.add(name)
            h = stable_int(f"cdb-sim-hint:{name}")
            price = 10 ** (-7 + (h % 10_000) / 10_000 * 10.5)
            qvol = 10 ** (3.5 + ((h >> 16) % 10_000) / 10_000 * 4.0)
            bases.append((name, f"{name.title()} Token", price, qvol))
    non_online = _pick_non_online(n_symbols, seed)
    specs = []
    for i, (base, full_name, price, qvol) in enumerate(bases):
        status, spot_allowed = non_online.get(i, ("1", True))
        volatility = "normal" if i == 0 else None
        specs.append(
            _make_spec(
                seed, base, "USDT", full_name, price, price, qvol, status, spot_allowed, volatility
            )
        )
    for base, quote, price, qvol in _EXTRA_PAIRS:
        name, usd = _KNOWN[base][1], _KNOWN[base][2]
        specs.append(_make_spec(seed, base, quote, name, price, usd, qvol, "1", True, None))
    return specs
