import json
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app.exchange import parsing
from app.exchange.parsing import (
    ParseError,
    millis_to_utc,
    parse_book_ticker,
    parse_book_tickers,
    parse_depth,
    parse_exchange_info,
    parse_kline,
    parse_klines,
    parse_market,
    parse_server_time,
    parse_ticker,
    parse_tickers,
    to_decimal,
    to_millis,
)

pytestmark = pytest.mark.unit


def loads(text: str) -> object:
    """Decode JSON the way the client does."""
    return json.loads(text, parse_float=Decimal, parse_int=int)


# --- to_decimal / to_millis ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.00001234", Decimal("0.00001234")),
        ("49999.00000", Decimal("49999.00000")),
        ("-0.0173", Decimal("-0.0173")),
        ("1e-8", Decimal("1E-8")),
        (7, Decimal(7)),
        (Decimal("0.1"), Decimal("0.1")),
        (0.1, Decimal("0.1")),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_to_decimal_accepts_documented_forms(value: object, expected: Decimal | None) -> None:
    assert to_decimal(value) == expected


@pytest.mark.parametrize("text", ["0.00001234", "49999.00000", "184.34", "0", "0.0005"])
def test_to_decimal_round_trips_exactly(text: str) -> None:
    parsed = to_decimal(text)
    assert parsed is not None
    assert format(parsed, "f") == text


def test_json_number_arrives_as_exact_decimal() -> None:
    payload = loads('{"p": 0.00001234, "q": 49999.00000}')
    assert isinstance(payload, dict)
    assert format(to_decimal(payload["p"]), "f") == "0.00001234"
    assert format(to_decimal(payload["q"]), "f") == "49999.00000"


@pytest.mark.parametrize(
    "bad",
    [
        "NaN",
        "nan",
        "Infinity",
        "-inf",
        "abc",
        "1,5",
        "1_000",
        "0x10",
        "1.2.3",
        Decimal("NaN"),
        Decimal("Infinity"),
        float("nan"),
        float("inf"),
        True,
        [1],
        {"a": 1},
        "1e999999",
    ],
)
def test_to_decimal_rejects_garbage_naming_the_field(bad: object) -> None:
    with pytest.raises(ParseError) as info:
        to_decimal(bad, "lastPrice")
    assert info.value.field == "lastPrice"
    assert "lastPrice" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_parse_error_shows_the_bad_value() -> None:
    with pytest.raises(ParseError, match=r"bidPrice.*'garbage'"):
        to_decimal("garbage", "bidPrice")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1710328232149, 1710328232149),
        ("1710328232149", 1710328232149),
        (Decimal("1710328232149"), 1710328232149),
        ("", None),
        (None, None),
    ],
)
def test_to_millis(value: object, expected: int | None) -> None:
    assert to_millis(value) == expected


@pytest.mark.parametrize("bad", ["12.5", "soon", "-5", True, "NaN"])
def test_to_millis_rejects(bad: object) -> None:
    with pytest.raises(ParseError, match="openTime"):
        to_millis(bad, "openTime")


def test_millis_to_utc_is_aware_and_exact() -> None:
    moment = millis_to_utc(1710328232149)
    assert moment.tzinfo is UTC
    assert moment == datetime(2024, 3, 13, 11, 10, 32, 149000, tzinfo=UTC)


def test_server_time() -> None:
    assert parse_server_time({"serverTime": 1645539742000}) == datetime(
        2022, 2, 22, 14, 22, 22, tzinfo=UTC
    )
    assert parse_server_time({"serverTime": "1645539742000"}).year == 2022
    with pytest.raises(ParseError, match="serverTime"):
        parse_server_time({})


# --- exchangeInfo ----------------------------------------------------------------------

MARKET = {
    "symbol": "BTCUSDT",
    "status": "1",
    "baseAsset": "BTC",
    "baseAssetPrecision": 6,
    "quoteAsset": "USDT",
    "quotePrecision": 2,
    "quoteAssetPrecision": 2,
    "baseCommissionPrecision": 6,
    "quoteCommissionPrecision": 2,
    "orderTypes": ["LIMIT", "MARKET", "LIMIT_MAKER"],
    "isSpotTradingAllowed": True,
    "isMarginTradingAllowed": False,
    "quoteAmountPrecision": "5",
    "baseSizePrecision": "0.000001",
    "permissions": ["SPOT"],
    "filters": [],
    "maxQuoteAmount": "2000000",
    "makerCommission": "0",
    "takerCommission": "0.0005",
    "quoteAmountPrecisionMarket": "5",
    "maxQuoteAmountMarket": "100000",
    "fullName": "Bitcoin",
    "tradeSideType": 1,
}


def test_parse_market_documented_form() -> None:
    market = parse_market(MARKET)
    assert market.symbol == "BTCUSDT"
    assert (market.base_asset, market.quote_asset) == ("BTC", "USDT")
    assert market.status == "1"
    assert market.is_tradable
    assert market.base_asset_precision == 6
    assert market.quote_asset_precision == 2
    assert market.min_notional == Decimal("5")
    assert market.min_qty == Decimal("0.000001")
    assert format(market.min_qty, "f") == "0.000001"
    assert market.maker_commission == Decimal("0")
    assert market.taker_commission == Decimal("0.0005")
    assert market.max_quote_amount == Decimal("2000000")
    assert market.full_name == "Bitcoin"


@pytest.mark.parametrize(
    ("status", "expected", "tradable"),
    [
        ("1", "1", True),
        ("2", "2", False),
        ("3", "3", False),
        (1, "1", True),
        ("ENABLED", "1", True),
        ("enabled", "1", True),
        ("PAUSED", "2", False),
        ("BREAK", "2", False),
        ("OFFLINE", "3", False),
        ("SOMETHING_NEW", "SOMETHING_NEW", False),
    ],
)
def test_parse_market_status(status: object, expected: str, tradable: bool) -> None:
    market = parse_market({**MARKET, "status": status})
    assert market.status == expected
    assert market.is_tradable is tradable


def test_parse_market_precisions_as_strings_and_missing_optionals() -> None:
    raw = {**MARKET, "baseAssetPrecision": "8", "quoteAssetPrecision": "4"}
    for key in ("quoteAmountPrecision", "baseSizePrecision", "makerCommission", "fullName"):
        raw.pop(key)
    raw["takerCommission"] = ""
    raw["maxQuoteAmount"] = None
    market = parse_market(raw)
    assert (market.base_asset_precision, market.quote_asset_precision) == (8, 4)
    assert market.min_notional is None
    assert market.min_qty is None
    assert market.maker_commission is None
    assert market.taker_commission is None
    assert market.max_quote_amount is None
    assert market.full_name is None


def test_parse_market_spot_trading_flag() -> None:
    assert not parse_market({**MARKET, "isSpotTradingAllowed": False}).is_tradable
    assert parse_market({**MARKET, "isSpotTradingAllowed": "true"}).is_spot_trading_allowed
    missing = {k: v for k, v in MARKET.items() if k != "isSpotTradingAllowed"}
    assert not parse_market(missing).is_tradable


def test_parse_market_falls_back_to_quote_precision() -> None:
    raw = {k: v for k, v in MARKET.items() if k != "quoteAssetPrecision"}
    assert parse_market({**raw, "quotePrecision": 3}).quote_asset_precision == 3


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"symbol": None}, "symbol"),
        ({"baseAssetPrecision": "six"}, "baseAssetPrecision"),
        ({"baseAssetPrecision": -1}, "baseAssetPrecision"),
        ({"status": None}, "status"),
        ({"takerCommission": "NaN"}, "takerCommission"),
        ({"baseSizePrecision": "Infinity"}, "baseSizePrecision"),
    ],
)
def test_parse_market_rejects_bad_fields(change: dict[str, object], field: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_market({**MARKET, **change})
    assert info.value.field == field


def test_parse_exchange_info() -> None:
    payload = {
        "timezone": "CST",
        "serverTime": 1645539742000,
        "rateLimits": [],
        "exchangeFilters": [],
        "symbols": [MARKET, {**MARKET, "symbol": "ETHUSDT", "baseAsset": "ETH", "status": "2"}],
    }
    markets = parse_exchange_info(payload)
    assert [m.symbol for m in markets] == ["BTCUSDT", "ETHUSDT"]
    assert [m.is_tradable for m in markets] == [True, False]
    assert parse_exchange_info({"symbols": []}) == []
    with pytest.raises(ParseError):
        parse_exchange_info({"timezone": "CST"})
    with pytest.raises(ParseError):
        parse_exchange_info([MARKET])


# --- tickers ---------------------------------------------------------------------------

TICKER = {
    "symbol": "BTCUSDT",
    "priceChange": "184.34",
    "priceChangePercent": "0.0173",
    "prevClosePrice": "10655.97",
    "lastPrice": "10840.31",
    "bidPrice": "10840.30",
    "bidQty": "",
    "askPrice": "10840.32",
    "askQty": "0.5",
    "openPrice": "10655.97",
    "highPrice": "10900",
    "lowPrice": "10600.01",
    "volume": "1234.567891",
    "quoteVolume": None,
    "openTime": 1641349500000,
    "closeTime": 1641349582808,
    "count": None,
}


def test_parse_ticker_documented_form() -> None:
    ticker = parse_ticker(TICKER)
    assert ticker.symbol == "BTCUSDT"
    assert ticker.last_price == Decimal("10840.31")
    assert ticker.bid_qty is None
    assert ticker.quote_volume is None
    assert ticker.price_change_fraction == Decimal("0.0173")
    assert ticker.price_change_pct == Decimal("1.73")
    assert ticker.open_time == datetime(2022, 1, 5, 2, 25, tzinfo=UTC)
    assert ticker.close_time == millis_to_utc(1641349582808)


def test_parse_ticker_numbers_and_times_in_other_forms() -> None:
    raw = loads(
        '{"symbol":"BTCUSDT","lastPrice":10840.31,"priceChangePercent":-0.0005,'
        '"openTime":"1710328232149","closeTime":"1710414632149","volume":0}'
    )
    ticker = parse_ticker(raw)
    assert format(ticker.last_price, "f") == "10840.31"
    assert ticker.price_change_pct == Decimal("-0.05")
    assert ticker.open_time == millis_to_utc(1710328232149)
    assert ticker.volume == 0
    assert ticker.high_price is None


def test_parse_ticker_all_fields_empty_or_null() -> None:
    raw = {key: ("" if i % 2 else None) for i, key in enumerate(TICKER)}
    raw["symbol"] = "XYZUSDT"
    ticker = parse_ticker(raw)
    assert ticker.symbol == "XYZUSDT"
    assert ticker.last_price is None
    assert ticker.price_change_pct is None
    assert ticker.open_time is None
    assert ticker.close_time is None


def test_parse_ticker_needs_symbol_and_names_bad_fields() -> None:
    with pytest.raises(ParseError, match="symbol"):
        parse_ticker({**TICKER, "symbol": ""})
    with pytest.raises(ParseError, match="lastPrice"):
        parse_ticker({**TICKER, "lastPrice": "NaN"})
    with pytest.raises(ParseError, match="openTime"):
        parse_ticker({**TICKER, "openTime": "yesterday"})


def test_parse_tickers_object_or_array() -> None:
    assert [t.symbol for t in parse_tickers(TICKER)] == ["BTCUSDT"]
    many = parse_tickers([TICKER, {**TICKER, "symbol": "ETHUSDT"}])
    assert [t.symbol for t in many] == ["BTCUSDT", "ETHUSDT"]
    assert parse_tickers([]) == []
    with pytest.raises(ParseError):
        parse_tickers("BTCUSDT")


def test_parse_book_ticker() -> None:
    book = parse_book_ticker(
        {
            "symbol": "AEUSDT",
            "bidPrice": "0.11001",
            "bidQty": "115.59",
            "askPrice": "0.11127",
            "askQty": "",
        }
    )
    assert format(book.bid_price, "f") == "0.11001"
    assert book.bid_qty == Decimal("115.59")
    assert book.ask_price == Decimal("0.11127")
    assert book.ask_qty is None
    assert [b.symbol for b in parse_book_tickers([{"symbol": "A"}, {"symbol": "B"}])] == ["A", "B"]
    assert parse_book_tickers({"symbol": "A", "bidPrice": None})[0].bid_price is None


# --- klines ----------------------------------------------------------------------------

ROW = [
    1640804880000,
    "47482.36",
    "47482.36",
    "47416.57",
    "47436.1",
    "3.550717",
    1640804940000,
    "168387.3",
]


def test_parse_kline_documented_8_field_row() -> None:
    kline = parse_kline(ROW)
    assert kline.open_time == datetime(2021, 12, 29, 19, 8, tzinfo=UTC)
    assert kline.close_time == datetime(2021, 12, 29, 19, 9, tzinfo=UTC)
    assert kline.open == Decimal("47482.36")
    assert kline.high == Decimal("47482.36")
    assert kline.low == Decimal("47416.57")
    assert format(kline.close, "f") == "47436.1"
    assert format(kline.volume, "f") == "3.550717"
    assert kline.quote_volume == Decimal("168387.3")


def test_parse_kline_numbers_and_string_times() -> None:
    row = loads(
        '["1640804880000", 47482.36, 47482.36, 47416.57, 47436.10, 0.00001234, '
        '"1640804940000", null]'
    )
    kline = parse_kline(row)
    assert kline.open_time == datetime(2021, 12, 29, 19, 8, tzinfo=UTC)
    assert format(kline.close, "f") == "47436.10"
    assert format(kline.volume, "f") == "0.00001234"
    assert kline.quote_volume is None


def test_parse_kline_tolerates_binance_style_12_fields() -> None:
    kline = parse_kline([*ROW, 308, "1.7", "80000.1", "0"])
    assert kline == parse_kline(ROW)


@pytest.mark.parametrize("row", [ROW[:7], [], "row", {"0": 1}, None])
def test_parse_kline_rejects_short_or_non_array_rows(row: object) -> None:
    with pytest.raises(ParseError, match="kline"):
        parse_kline(row)


@pytest.mark.parametrize(
    ("index", "value", "field"),
    [
        (0, None, "kline.openTime"),
        (1, "", "kline.open"),
        (2, "NaN", "kline.high"),
        (4, "abc", "kline.close"),
        (6, "later", "kline.closeTime"),
    ],
)
def test_parse_kline_names_bad_field(index: int, value: object, field: str) -> None:
    row = list(ROW)
    row[index] = value
    with pytest.raises(ParseError) as info:
        parse_kline(row)
    assert info.value.field == field


def test_parse_klines() -> None:
    assert len(parse_klines([ROW, ROW])) == 2
    assert parse_klines([]) == []
    with pytest.raises(ParseError):
        parse_klines({"code": -1121})


# --- depth -----------------------------------------------------------------------------


def test_parse_depth_documented_form() -> None:
    fetched = datetime(2024, 3, 13, tzinfo=UTC)
    book = parse_depth(
        "BTCUSDT",
        {
            "lastUpdateId": 1112416,
            "bids": [["15.00000", "49999.00000"], ["14.99000", "1"]],
            "asks": [["16.00000", "12.00000"]],
        },
        fetched,
    )
    assert book.symbol == "BTCUSDT"
    assert book.last_update_id == 1112416
    assert book.bids == ((Decimal("15.00000"), Decimal("49999.00000")), (Decimal("14.99"), 1))
    assert format(book.bids[0][1], "f") == "49999.00000"
    assert book.best_bid == Decimal("15")
    assert book.best_ask == Decimal("16")
    assert book.fetched_at == fetched


def test_parse_depth_string_id_numeric_levels_and_sorting() -> None:
    payload = loads(
        '{"lastUpdateId":"20453289489","bids":[[1.5,2],[1.7,3]],"asks":[[1.9,1],[1.8,0.00001234]]}'
    )
    book = parse_depth("X", payload)
    assert book.last_update_id == 20453289489
    assert [p for p, _ in book.bids] == [Decimal("1.7"), Decimal("1.5")]
    assert [p for p, _ in book.asks] == [Decimal("1.8"), Decimal("1.9")]
    assert format(book.asks[0][1], "f") == "0.00001234"
    assert book.fetched_at is None


def test_parse_depth_empty_and_missing_id() -> None:
    book = parse_depth("X", {"bids": [], "asks": None})
    assert book.bids == ()
    assert book.asks == ()
    assert book.last_update_id is None
    assert book.best_bid is None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"bids": []}, "depth.asks"),
        ({"bids": [["1"]], "asks": []}, "depth.bids"),
        ({"bids": [["1", "NaN"]], "asks": []}, "depth.bids.qty"),
        ({"bids": [], "asks": [["x", "1"]]}, "depth.asks.price"),
        ({"bids": "none", "asks": []}, "depth.bids"),
        ({"lastUpdateId": "abc", "bids": [], "asks": []}, "lastUpdateId"),
        ([], "depth"),
    ],
)
def test_parse_depth_rejects(payload: object, field: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_depth("X", payload)
    assert info.value.field == field


def test_one_unreadable_ticker_does_not_fail_the_others():
    from app.domain.validation import symbol_fault

    good = {"symbol": "BTCUSDT", "lastPrice": "60000.1", "closeTime": 1_700_000_000_000}
    answer = [
        good,
        {"symbol": "ETHUSDT", "lastPrice": "abc", "closeTime": 1_700_000_000_000},
        "not an object",
        {"symbol": " BTCUSDT", "lastPrice": "1", "closeTime": 1_700_000_000_000},
    ]
    tickers = parsing.parse_tickers(answer)
    assert [t.symbol for t in tickers] == ["BTCUSDT", " BTCUSDT"]
    assert [symbol for symbol, _ in tickers.rejected] == ["ETHUSDT", "#2"]
    assert "lastPrice" in tickers.rejected[0][1]
    # a name that only trims to a real one is kept as sent, and refused where it enters
    assert symbol_fault(tickers[1].symbol) is not None and symbol_fault("BTCUSDT") is None


def test_one_unreadable_market_does_not_fail_the_refresh():
    info = {"symbols": [{"symbol": "BTCUSDT"}, "junk"]}
    markets = parsing.parse_exchange_info(info)
    assert list(markets) == [] and len(markets.rejected) == 2


def test_a_symbol_answered_twice_is_refused_whole():
    close = 1_700_000_000_000
    answer = [
        {"symbol": "BTCUSDT", "lastPrice": "60000.1", "closeTime": close},
        {"symbol": "ETHUSDT", "lastPrice": "3000", "closeTime": close},
        {"symbol": "BTCUSDT", "lastPrice": "1", "closeTime": close},
    ]
    tickers = parsing.parse_tickers(answer)
    assert [t.symbol for t in tickers] == ["ETHUSDT"]
    assert tickers.rejected == [("BTCUSDT", "answered 2 times: every entry refused")]

    books = parsing.parse_book_tickers(
        [
            {"symbol": "BTCUSDT", "bidPrice": "1", "askPrice": "2"},
            {"symbol": "BTCUSDT", "bidPrice": "3", "askPrice": "4"},
            {"symbol": "ETHUSDT", "bidPrice": "5", "askPrice": "6"},
        ]
    )
    assert [b.symbol for b in books] == ["ETHUSDT"] and books.rejected[0][0] == "BTCUSDT"


# The shape a numeric string must have; to_decimal reads exactly these (and says why not).
DECIMAL_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
LARGEST = parsing._MAX_ADJUSTED_EXPONENT


@given(
    st.from_regex(DECIMAL_NUMBER, fullmatch=True)
    | st.text(alphabet="0123456789+-.eE _,xNaInfity\u0661\u00a0 ", max_size=12)
    | st.text(max_size=6)
)
@example("1_000")
@example("\u0661")
@example(" -0.5e-3 ")
def test_a_numeric_string_is_read_exactly_when_it_is_a_decimal_number(text: str) -> None:
    stripped = text.strip()
    try:
        value = to_decimal(text, "price")
    except ParseError:
        value = "refused"
    if not stripped:
        assert value is None
        return
    expected: object = "refused"
    if DECIMAL_NUMBER.fullmatch(stripped):
        try:
            number = Decimal(stripped)
        except InvalidOperation:  # an exponent beyond what Decimal holds
            number = None
        if number is not None and abs(number.adjusted()) <= LARGEST:
            expected = number
    assert value == expected, (text, value)
