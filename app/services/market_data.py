"""The market-data use case: fetch, screen, validate and store one run."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import InterfaceError, OperationalError

from app.config import Settings
from app.domain import market as dm
from app.domain.screener import Rejection, screen
from app.domain.strategies import get_strategy
from app.domain.validation import check_book, check_klines, check_ticker, symbol_fault
from app.exchange.client import MexcClient, RetryEvent
from app.exchange.errors import ExchangeError
from app.extensions import Database
from app.faults import crash_point
from app.models import (
    BookSnapshot,
    Kline,
    LatestTicker,
    Market,
    MarketDataRun,
    TickerSnapshot,
    UniverseSnapshot,
)
from app.services import counters, market_rows
from app.services.portfolio import held_positions
from app.services.store import upsert
from app.services.stream_feed import stream_tickers, tell_streamer
from app.services.universe import snapshot_row, view_at

log = logging.getLogger(__name__)

BOOK_LEVELS = 50
KLINE_VALUES = ("open", "high", "low", "close", "volume", "close_time", "quote_volume")
MARKETS_MAX_AGE = timedelta(hours=2)
FINISHED = ("ok", "partial", "failed")


@dataclass
class RunSummary:
    id: int
    run_key: str
    status: str
    screened: list[str]
    stored: list[str]
    rejections: list[dict[str, str]]
    error: str | None
    reused: bool = False
    signals_done: bool = False  # a reused run's signal stage did its work already

    @classmethod
    def of(cls, run: MarketDataRun, reused: bool = False) -> RunSummary:
        return cls(
            id=run.id,
            run_key=run.run_key,
            status=run.status,
            screened=list(run.screened_symbols),
            stored=list(run.stored_symbols),
            rejections=list(run.rejections),
            error=run.error,
            reused=reused,
            signals_done=run.signals_done_at is not None,
        )


@dataclass
class _Fetched:
    """What one selected symbol brought back from MEXC."""

    klines: list[dm.Kline] = field(default_factory=list)
    book: dm.OrderBook | None = None
    error: str | None = None


# MEXC documents 1000 klines a request but serves at most 500.
KLINES_PER_REQUEST = 500


def kline_limit(interval: str, lookback_minutes: int) -> int:
    """Candles that cover the look-back window, plus the one in progress."""
    seconds = dm.KLINE_INTERVALS[interval]
    return min(KLINES_PER_REQUEST, max(2, math.ceil(lookback_minutes * 60 / seconds) + 1))


def refresh_markets(db: Database, client: MexcClient, now: datetime) -> int:
    """Store exchangeInfo's trading rules; returns how many markets were written."""
    markets = client.exchange_info()
    for symbol, reason in getattr(markets, "rejected", []):
        log.warning("market rejected", extra={"symbol": symbol, "reason": reason})
    rows = []
    for market in markets:
        if fault := symbol_fault(market.symbol):
            log.warning("market rejected", extra={"reason": fault})
            continue
        rows.append(market_rows.market_row(market, now))
    with db.transaction() as session:
        upsert(session, Market, rows, ["symbol"])
    log.info("markets refreshed", extra={"markets": len(rows)})
    return len(rows)


def run_market_data(
    db: Database,
    settings: Settings,
    client: MexcClient,
    *,
    run_key: str,
    trigger: str,
    clock: Callable[[], datetime],
    retries: list[RetryEvent] | None = None,
    reason: str | None = None,
) -> RunSummary:
    """One market-data run, idempotent per `run_key`.

    A finished run with the same key is returned as it is; an unfinished one (its
    worker died) is run again in place, and the unique keys make the writes harmless.
    `retries` is the list the client's on_retry hook appends to; it is recorded.
    """
    retries = retries if retries is not None else []
    started = clock()
    with db.transaction() as session:
        run = session.scalar(select(MarketDataRun).where(MarketDataRun.run_key == run_key))
        if run is not None and run.status in FINISHED:
            return RunSummary.of(run, reused=True)
        if run is None:
            run = MarketDataRun(
                run_key=run_key,
                trigger=trigger[:16],
                status="running",
                started_at=started,
                attempts=1,
                parameters=_parameters(settings) | ({"reason": reason[:200]} if reason else {}),
                screened_symbols=[],
                stored_symbols=[],
                rejections=[],
                retries=[],
            )
            session.add(run)
            counters.run_moved(session, None, "running")
        else:
            run.attempts += 1
        session.flush()
        run_id = run.id
    log.info("market-data run started", extra={"run_id": run_id, "run_key": run_key})

    unexpected: BaseException | None = None
    try:
        outcome = _fetch_and_store(db, settings, client, run_id, clock)
        error = None
    except ExchangeError as exc:
        outcome, error = None, f"{type(exc).__name__}: {exc}"
        log.error("market-data run failed", extra={"run_id": run_id, "error": error})
    except (OperationalError, InterfaceError):
        # The database went away mid-run: leave the run unfinished so the task's retry runs
        # it again in place (the reconciler fails it if no retry ever does).
        log.warning("market-data run interrupted by the database", extra={"run_id": run_id})
        raise
    except Exception as exc:  # a bug or a time limit: record it, then let the task fail
        outcome, error, unexpected = None, f"{type(exc).__name__}: {exc}", exc
        log.exception("market-data run crashed", extra={"run_id": run_id})

    with db.transaction() as session:
        run = session.get_one(MarketDataRun, run_id)
        was = run.status
        run.finished_at = clock()
        run.retries = [_retry_dict(event) for event in retries]
        if outcome is None:
            run.status, run.error = "failed", error
        else:
            run.data_time = outcome["data_time"]
            run.parameters = {
                **run.parameters,
                "source": outcome["source"],
                "mexc_wait_ms": outcome["mexc_wait_ms"],
            }
            run.tickers_received = outcome["tickers"]
            run.universe_size = outcome["universe"]
            run.screened_symbols = outcome["screened"]
            run.stored_symbols = outcome["stored"]
            run.rejections = _capped([r.as_dict() for r in outcome["rejections"]])
            if not outcome["stored"]:
                run.status = "failed"
                run.error = "no symbol passed screening and validation"
            else:
                run.status = "partial" if outcome["rejections"] else "ok"
        counters.run_moved(session, was, run.status)
        summary = RunSummary.of(run)
    if unexpected is not None:
        raise unexpected
    log.info(
        "market-data run finished",
        extra={
            "run_id": run_id,
            "status": summary.status,
            "screened": len(summary.screened),
            "stored": len(summary.stored),
            "rejected": len(summary.rejections),
            "retries": len(retries),
        },
    )
    return summary


def _fetch_and_store(
    db: Database,
    settings: Settings,
    client: MexcClient,
    run_id: int,
    clock: Callable[[], datetime],
) -> dict[str, Any]:
    with db.transaction() as session:
        markets, newest = _markets(session)
        positions = held_positions(session)
        held = {p.symbol for p in positions}
        stops = {p.symbol: p.stop_price for p in positions if p.stop_price is not None}
    if newest is None or clock() - newest > MARKETS_MAX_AGE:
        refresh_markets(db, client, clock())
        with db.transaction() as session:
            markets, _ = _markets(session)

    # The whole market: from the stream when it is fresh, else one REST request (weight 40).
    streamed = stream_tickers(settings)
    source = "rest" if streamed is None else "stream"
    waited = client.http_seconds
    tickers = client.tickers_24h() if streamed is None else streamed
    waited = client.http_seconds - waited
    screening = screen(
        tickers,
        markets,
        whitelist=settings.symbol_whitelist,
        min_quote_volume=settings.min_quote_volume,
        top_n=settings.top_n,
    )
    rejections = list(screening.rejections)
    # Entries of the answer that could not be read at all are dropped one by one.
    rejections += [
        Rejection(symbol, "ticker", why) for symbol, why in getattr(tickers, "rejected", [])
    ]
    stale_after = timedelta(seconds=settings.data_stale_timeout_sec)

    now = clock()
    # Held positions are watched whatever the screen says: they need prices, books and klines.
    universe = {t.symbol for t in screening.universe}
    watched = screening.universe + [t for t in tickers if t.symbol in held - universe]
    good_tickers = []
    for ticker in watched:
        reasons = check_ticker(ticker, now, stale_after)
        if reasons:
            rejections.append(Rejection(ticker.symbol, "ticker", "; ".join(reasons)))
        else:
            good_tickers.append(ticker)
    good_symbols = {t.symbol for t in good_tickers}
    # The universe's history: this run's prices, then the strategy says which symbols
    # deserve their candles and book (TOP_N of them, plus every held one).
    latest = {t.symbol: t.last_price for t in good_tickers if t.symbol in universe}
    with db.transaction() as session:
        upsert(
            session,
            UniverseSnapshot,
            [snapshot_row(run_id, now, (t for t in good_tickers if t.symbol in universe))],
            ["run_id"],
        )
        view = view_at(session, now, latest, settings.interval, settings.lookback_minutes)
    interest = get_strategy(settings.strategy).interest(view)
    if interest:
        ranked = sorted(interest, key=lambda symbol: (-interest[symbol], symbol))
        selected = ranked[: settings.top_n]
    else:  # no history a look-back deep yet: the biggest 24h movers
        selected = [t.symbol for t in screening.selected if t.symbol in good_symbols]
    selected += sorted((held & good_symbols) - set(selected))
    prices = {t.symbol: t.last_price for t in good_tickers}
    tell_streamer(settings, {s: prices[s] for s in selected}, stops)

    started = time.perf_counter()
    fetched = _fetch_details(client, settings, selected)
    waited += time.perf_counter() - started  # the requests run in parallel: their wall time
    now = clock()
    stored: list[str] = []
    latest_trade: dict[str, Decimal] = {}  # the in-progress candle's close, just fetched
    kline_rows: list[dict[str, Any]] = []
    book_rows: list[dict[str, Any]] = []
    for symbol in selected:
        got = fetched[symbol]
        if got.error:
            rejections.append(Rejection(symbol, "fetch", got.error))
            continue
        assert got.book is not None
        reasons = check_klines(got.klines, settings.interval, now, stale_after)
        if reasons:
            rejections.append(Rejection(symbol, "klines", "; ".join(reasons)))
            continue
        reasons = check_book(got.book)
        if reasons:
            rejections.append(Rejection(symbol, "book", "; ".join(reasons)))
            continue
        stored.append(symbol)
        latest_trade[symbol] = got.klines[-1].close
        kline_rows.extend(
            market_rows.kline_row(symbol, settings.interval, k, run_id) for k in got.klines
        )
        book_rows.append(market_rows.book_row(got.book, run_id, now))

    for rejection in rejections:
        log.warning(
            "market data rejected",
            extra={"run_id": run_id, **rejection.as_dict()},
        )

    # Full ticker rows only for what risk and execution use: the selected and held symbols
    # (every other price is in the universe snapshot).
    selected_set = set(selected)
    # Their last price is the freshest there is: the in-progress candle's close fetched a
    # moment ago (the all-tickers answer, or a mini ticker pushed every few seconds, is
    # older; a stop-loss must not wait for it). Its time stays the ticker's: a candle says
    # nothing of when its last trade was, and a frozen market must still look stale.
    kept = [
        t if t.symbol not in latest_trade else replace(t, last_price=latest_trade[t.symbol])
        for t in good_tickers
        if t.symbol in selected_set
    ]
    ticker_rows = [market_rows.ticker_row(t, run_id, True) for t in kept]
    with db.transaction() as session:
        upsert(session, TickerSnapshot, ticker_rows, ["run_id", "symbol"])
        upsert(session, LatestTicker, [market_rows.latest_row(t, run_id) for t in kept], ["symbol"])
        # Closed candles come back unchanged every run: only a changed one is rewritten.
        upsert(
            session,
            Kline,
            kline_rows,
            ["symbol", "interval", "open_time"],
            unless_same=KLINE_VALUES,
        )
        upsert(session, BookSnapshot, book_rows, ["run_id", "symbol"])
        crash_point("market_data.before_commit")
    return {
        "source": source,
        "mexc_wait_ms": round(waited * 1000),
        "data_time": max((t.close_time for t in kept if t.close_time), default=None),
        "tickers": len(tickers),
        "universe": len(screening.universe),
        "screened": selected,
        "stored": stored,
        "rejections": rejections,
    }


# Markets converted once per process and reused while the table is unchanged (its row count
# and newest update time), instead of loading and converting every market on every run.
_markets_cache: dict[str, Any] = {"version": None, "markets": {}, "newest": None}


def _markets(session: Any) -> tuple[dict[str, dm.Market], datetime | None]:
    count, newest = session.execute(select(func.count(), func.max(Market.updated_at))).one()
    version = (session.get_bind().url.render_as_string(), count, newest)
    if _markets_cache["version"] != version:
        _markets_cache.update(
            version=version,
            markets={
                m.symbol: market_rows.domain_market(m) for m in session.scalars(select(Market))
            },
            newest=newest,
        )
    return _markets_cache["markets"], _markets_cache["newest"]


def _fetch_details(client: MexcClient, settings: Settings, symbols: list[str]) -> dict:
    limit = kline_limit(settings.interval, settings.lookback_minutes)

    def fetch(symbol: str) -> _Fetched:
        try:
            klines = client.klines(symbol, settings.interval, limit=limit)
            book = client.depth(symbol, limit=BOOK_LEVELS)
        except ExchangeError as exc:
            return _Fetched(error=f"{type(exc).__name__}: {exc}")
        return _Fetched(klines=klines, book=book)

    if not symbols:
        return {}
    workers = min(settings.market_data_fetch_concurrency, len(symbols))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mexc-fetch") as pool:
        return dict(zip(symbols, pool.map(fetch, symbols), strict=True))


REJECTIONS_KEPT = 200


def _capped(rejections: list[dict[str, str]]) -> list[dict[str, str]]:
    """At most REJECTIONS_KEPT reasons in the run's record, and how many more there were."""
    if len(rejections) <= REJECTIONS_KEPT:
        return rejections
    more = len(rejections) - REJECTIONS_KEPT
    return [
        *rejections[:REJECTIONS_KEPT],
        {"symbol": "*", "stage": "summary", "reason": f"{more} more rejections not listed"},
    ]


def _parameters(settings: Settings) -> dict[str, Any]:
    return {
        "symbol_whitelist": settings.symbol_whitelist,
        "top_n": settings.top_n,
        "interval": settings.interval,
        "lookback_minutes": settings.lookback_minutes,
        "min_quote_volume": str(settings.min_quote_volume),
        "data_stale_timeout_sec": settings.data_stale_timeout_sec,
    }


def _retry_dict(event: RetryEvent) -> dict[str, Any]:
    return {
        "path": event.path,
        "attempt": event.attempt,
        "error": event.error,
        "message": event.message,
        "delay": round(event.delay, 3),
    }
