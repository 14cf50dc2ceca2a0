"""MEXC's spot push wire format: the .proto's field numbers, the codec both ways, and errors."""

from __future__ import annotations

from decimal import Decimal

import pytest
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import given, settings
from hypothesis import strategies as st

from app.exchange.proto import (
    AggreDepth,
    BookTicker,
    Deal,
    Deals,
    Frame,
    FrameDecodeError,
    Kline,
    LimitDepth,
    MiniTicker,
    MiniTickers,
    PriceLevel,
    decode,
    encode,
    schema,
)
from app.exchange.proto.schema import ProtoSchemaError, parse_proto

pytestmark = pytest.mark.unit

S, I32, I64 = FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64
M = FieldDescriptor.TYPE_MESSAGE
# Field numbers and types of MEXC's published definitions (mexcdevelop/websocket-proto).
MEXC_FIELDS = {
    "PushDataV3ApiWrapper": {
        "channel": (1, S),
        "symbol": (3, S),
        "symbolId": (4, S),
        "createTime": (5, I64),
        "sendTime": (6, I64),
        "publicLimitDepths": (303, M),
        "publicSpotKline": (308, M),
        "publicMiniTicker": (309, M),
        "publicMiniTickers": (310, M),
        "publicAggreDepths": (313, M),
        "publicAggreDeals": (314, M),
        "publicAggreBookTicker": (315, M),
    },
    "PublicMiniTickerV3Api": {
        name: (number, S)
        for number, name in enumerate(
            [
                "symbol",
                "price",
                "rate",
                "zonedRate",
                "high",
                "low",
                "volume",
                "quantity",
                "lastCloseRate",
                "lastCloseZonedRate",
                "lastCloseHigh",
                "lastCloseLow",
            ],
            start=1,
        )
    },
    "PublicMiniTickersV3Api": {"items": (1, M)},
    "PublicAggreBookTickerV3Api": {
        "bidPrice": (1, S),
        "bidQuantity": (2, S),
        "askPrice": (3, S),
        "askQuantity": (4, S),
        "version": (5, S),
        "lastOrderCreateTime": (6, I64),
    },
    "PublicAggreDealsV3Api": {"deals": (1, M), "eventType": (2, S)},
    "PublicAggreDealsV3ApiItem": {
        "price": (1, S),
        "quantity": (2, S),
        "tradeType": (3, I32),
        "time": (4, I64),
        "tradeId": (5, S),
    },
    "PublicAggreDepthsV3Api": {
        "asks": (1, M),
        "bids": (2, M),
        "eventType": (3, S),
        "fromVersion": (4, S),
        "toVersion": (5, S),
        "lastOrderCreateTime": (6, I64),
    },
    "PublicLimitDepthsV3Api": {
        "asks": (1, M),
        "bids": (2, M),
        "eventType": (3, S),
        "version": (4, S),
        "lastOrderCreateTime": (5, I64),
    },
    "PublicSpotKlineV3Api": {
        "interval": (1, S),
        "windowStart": (2, I64),
        "openingPrice": (3, S),
        "closingPrice": (4, S),
        "highestPrice": (5, S),
        "lowestPrice": (6, S),
        "volume": (7, S),
        "amount": (8, S),
        "windowEnd": (9, I64),
    },
}


def test_field_numbers_and_types_are_mexcs() -> None:
    for message, fields in MEXC_FIELDS.items():
        descriptor = schema.POOL.FindMessageTypeByName(message)
        actual = {f.name: (f.number, f.type) for f in descriptor.fields}
        assert actual == fields, message
    wrapper = schema.POOL.FindMessageTypeByName("PushDataV3ApiWrapper")
    body = wrapper.oneofs_by_name["body"]
    assert {f.number for f in body.fields} == {303, 308, 309, 310, 313, 314, 315}
    assert wrapper.fields_by_name["sendTime"].has_presence  # proto3 optional


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def test_decodes_the_layout_of_a_live_frame() -> None:
    """Bytes assembled by hand in the layout of a live bookTicker frame (channel, symbol,
    sendTime, body 315 with six fields), independent of the encoder."""
    channel = b"spot@public.aggre.bookTicker.v3.api.pb@100ms@BTCUSDT"
    body = b"".join(
        [
            _field(1, b"80535.88"),
            _field(2, b"0.380497"),
            _field(3, b"80535.89"),
            _field(4, b"0.33336356"),
            _field(5, b"81721676217"),
            _field(6, 1789897581006),
        ]
    )
    data = _field(1, channel) + _field(3, b"BTCUSDT") + _field(6, 1789897581009) + _field(315, body)
    assert data[:2] == bytes.fromhex("0a34") and _field(315, body)[:3] == bytes.fromhex("da133e")
    frame = decode(data)
    assert frame == Frame(
        channel=channel.decode(),
        body=BookTicker(
            Decimal("80535.88"),
            Decimal("0.380497"),
            Decimal("80535.89"),
            Decimal("0.33336356"),
            81721676217,
            1789897581006,
        ),
        symbol="BTCUSDT",
        send_time=1789897581009,
    )
    assert encode(frame) == data  # and the encoder writes the same bytes


decimals = st.decimals(min_value=0, max_value=10**9, places=8, allow_nan=False)
levels = st.lists(st.builds(PriceLevel, decimals, decimals), max_size=4).map(tuple)
maybe = st.none() | decimals
bodies = st.one_of(
    st.builds(
        BookTicker,
        maybe,
        maybe,
        maybe,
        maybe,
        st.none() | st.integers(0, 2**62),
        st.integers(0, 2**62),
    ),
    st.builds(
        Deals,
        st.lists(
            st.builds(
                Deal,
                decimals,
                decimals,
                st.sampled_from([1, 2]),
                st.integers(0, 2**62),
                st.text(max_size=12),
            ),
            max_size=5,
        ).map(tuple),
        st.text(max_size=30),
    ),
    st.builds(
        AggreDepth,
        levels,
        levels,
        st.text(max_size=5),
        st.integers(0, 2**62),
        st.integers(0, 2**62),
        st.integers(0, 2**62),
    ),
    st.builds(
        LimitDepth,
        levels,
        levels,
        st.text(max_size=5),
        st.none() | st.integers(0, 2**62),
        st.integers(0, 2**62),
    ),
    st.builds(
        Kline,
        st.sampled_from(["Min1", "Day1"]),
        st.integers(0, 2**40),
        st.integers(0, 2**40),
        decimals,
        decimals,
        decimals,
        decimals,
        decimals,
        decimals,
    ),
    st.builds(MiniTicker, st.text(min_size=1, max_size=8), *[maybe] * 11),
    st.builds(
        MiniTickers,
        st.lists(st.builds(MiniTicker, st.text(max_size=8), *[maybe] * 11), max_size=3).map(tuple),
    ),
)


@settings(max_examples=150, deadline=None)
@given(
    body=bodies,
    channel=st.text(max_size=60),
    symbol=st.none() | st.text(max_size=10),
    times=st.tuples(st.none() | st.integers(0, 2**62), st.none() | st.integers(0, 2**62)),
)
def test_encode_then_decode_is_the_identity(body, channel, symbol, times) -> None:
    frame = Frame(channel, body, symbol, None, *times)
    data = encode(frame)
    assert decode(data) == frame
    assert encode(decode(data)) == data


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "not a PushDataV3ApiWrapper"),
        (b"garbage!", "not a PushDataV3ApiWrapper"),
        (b"", "no body"),
        (_field(1, b"spot@private.orders.v3.api.pb") + _field(304, b""), "no body"),
        (
            _field(1, b"c") + _field(315, _field(1, b"12,5") + _field(5, b"7")),
            "bidPrice='12,5'",
        ),
        (_field(1, b"c") + _field(313, _field(4, b"x1") + _field(5, b"2")), "fromVersion='x1'"),
        (_field(1, b"c") + _field(308, _field(3, b"NaN")), "openingPrice='NaN'"),
    ],
)
def test_decode_errors_say_what_is_wrong(data: bytes, says: str) -> None:
    with pytest.raises(FrameDecodeError, match=says.replace("(", r"\(")):
        decode(data)


def test_decode_refuses_text_frames() -> None:
    with pytest.raises(FrameDecodeError, match="JSON text frame"):
        decode('{"id":0,"code":0,"msg":"PONG"}')  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('syntax = "proto2";', "proto3"),
        ("message A { map<string, string> m = 1; }", "expected"),
        ("enum E { A = 0; }", "'enum'"),
    ],
)
def test_the_schema_reader_refuses_what_it_does_not_know(text: str, says: str) -> None:
    with pytest.raises((ProtoSchemaError, IndexError, ValueError), match=says):
        parse_proto(text)
