"""Stored book levels are written without an exponent, exactly as format(value, "f")."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from app.services.market_rows import _plain


@given(
    st.decimals(allow_nan=False, allow_infinity=False, places=None)
    | st.builds(lambda n, e: Decimal(n).scaleb(e), st.integers(0, 10**15), st.integers(-30, 30))
)
def test_a_level_is_written_as_format_f_writes_it(value):
    assert _plain(value) == format(value, "f")
    assert "E" not in _plain(value) and Decimal(_plain(value)) == value
