"""The simulated MEXC the bench runs against, and the moves that make the strategy trade.

The simulator runs in the bench process (`SimulatorServer`, on background threads) with its
weight limit lifted (see bench.driver). The pipeline sections watch a whitelist of the
calmest tradable symbols — their 15-minute moves stay far below the momentum thresholds —
with deep books, so a run trades only when the bench moves a market:

  quiet market   nothing moves: every symbol is evaluated, none signals
  with trades    before each run one symbol (in rotation) is stepped: up 0.7 % when it was
                 last stepped down (momentum +0.7 % over 15 m, last candle up: BUY), down
                 0.5 % when it was last stepped up (momentum -0.5 %: SELL the position). Each
                 symbol alternates, so about every run has a buy or a sell, an order and a fill;
                 the loss per round trip is ~0.4 USDT, far from the drawdown halt.
"""

from __future__ import annotations

import time
from decimal import Decimal

from app.exchange.simulator import SimulatorServer

WEIGHT_LIMIT = 1_000_000  # per 10 s: never the simulator's 429
SEED = 7
BUY_FACTOR = "1.007"
SELL_FACTOR = "0.995"
DEPTH_FACTOR = "50"


class Market:
    def __init__(self, n_symbols: int, seed: int = SEED) -> None:
        self.n_symbols = n_symbols
        self.server = SimulatorServer(n_symbols=n_symbols, seed=seed, weight_limit=WEIGHT_LIMIT)
        self._touches: dict[str, int] = {}

    def __enter__(self) -> Market:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    def tradable(self) -> list[str]:
        market = self.server.market
        return [
            s
            for s in market.usdt_symbols
            if market.spec(s).status == "1" and market.spec(s).spot_allowed
        ]

    def calmest(self, count: int, minutes_ahead: int = 60) -> list[str]:
        """The tradable symbols whose 15-minute moves stay smallest from now on."""
        market = self.server.market
        now = int(time.time() * 1000)

        def largest_move(symbol: str) -> Decimal:
            return max(
                abs(market.price(symbol, t) / market.price(symbol, t - 900_000) - 1)
                for t in range(now, now + minutes_ahead * 60_000, 60_000)
            )

        return sorted(self.tradable(), key=largest_move)[:count]

    def flatten(self, symbols: list[str]) -> None:
        """No drift and deep books on these symbols: only the bench's steps move them."""
        for symbol in symbols:
            self.server.set_scenario(symbol, trend_pct_per_min="0", depth_factor=DEPTH_FACTOR)
        self._touches.clear()

    def step(self, symbols: list[str], index: int) -> str:
        """Before run `index`: step one symbol up or down (see the module doc); returns it."""
        symbol = symbols[index % len(symbols)]
        touches = self._touches.get(symbol, 0)
        self._touches[symbol] = touches + 1
        factor = BUY_FACTOR if touches % 2 == 0 else SELL_FACTOR
        self.server.set_scenario(
            symbol, price_factor=factor, trend_pct_per_min="0", depth_factor=DEPTH_FACTOR
        )
        return symbol
