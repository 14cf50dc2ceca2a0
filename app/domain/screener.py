"""Choose the symbols worth a closer look: the top movers of an eligible universe."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from app.domain.market import Market, Ticker24h


@dataclass(frozen=True, slots=True)
class Rejection:
    symbol: str
    stage: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"symbol": self.symbol, "stage": self.stage, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Screening:
    universe: list[Ticker24h]  # eligible tickers, in input order
    selected: list[Ticker24h]  # the top movers, biggest absolute 24h change first
    rejections: list[Rejection] = field(default_factory=list)


def screen(
    tickers: Iterable[Ticker24h],
    markets: Mapping[str, Market],
    *,
    whitelist: Sequence[str],
    min_quote_volume: Decimal,
    top_n: int,
    quote_asset: str = "USDT",
) -> Screening:
    """Universe = the whitelist, or every tradable `quote_asset` pair; then the top N movers.

    Both kinds of universe need at least `min_quote_volume` of 24h quote volume. Markets
    unknown to `markets` are only accepted while no markets are known at all (before the
    first exchangeInfo refresh). Whitelisted symbols that drop out are reported; the
    thousands of pairs outside a non-whitelist universe are not.
    """
    wanted = set(whitelist)
    seen: set[str] = set()
    universe: list[Ticker24h] = []
    rejections: list[Rejection] = []

    for ticker in tickers:
        symbol = ticker.symbol
        seen.add(symbol)
        market = markets.get(symbol)
        if wanted:
            if symbol not in wanted:
                continue
        elif not symbol.endswith(quote_asset) or (markets and market is None):
            continue
        reason = _ineligible(ticker, market, bool(markets), min_quote_volume)
        if reason:
            if wanted:
                rejections.append(Rejection(symbol, "screen", reason))
            continue
        universe.append(ticker)

    for symbol in sorted(wanted - seen):
        rejections.append(Rejection(symbol, "screen", "not in MEXC's 24h tickers"))

    ranked = sorted(
        universe,
        key=lambda t: (-abs(t.price_change_fraction or 0), -(t.quote_volume or 0), t.symbol),
    )
    return Screening(universe=universe, selected=ranked[:top_n], rejections=rejections)


def _ineligible(
    ticker: Ticker24h, market: Market | None, markets_known: bool, min_quote_volume: Decimal
) -> str | None:
    if market is None and markets_known:
        return "not listed in exchangeInfo"
    if market is not None and not market.is_tradable:
        allowed = market.is_spot_trading_allowed
        return f"not tradable (status {market.status}, spot trading allowed {allowed})"
    if ticker.price_change_fraction is None:
        return "no 24h price change"
    quote_volume = ticker.quote_volume or Decimal(0)
    if quote_volume < min_quote_volume:
        return f"24h quote volume {quote_volume} below MIN_QUOTE_VOLUME {min_quote_volume}"
    return None
