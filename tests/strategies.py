"""Hypothesis strategies several test packages share."""

from __future__ import annotations

from hypothesis import strategies as st

HOSTILE_NUMBERS = st.one_of(
    st.sampled_from(
        [
            "nan",
            "inf",
            "-inf",
            "1e1000000000",
            "1e5000",
            "-5",
            "0",
            "-0",
            "1/0",
            "",
            " ",
            "\x00",
            "1" * 400,
            "9" * 5000,
            "0x10",
            "1_000",
            "٣",
            "2",
            "0.5",
            "30000/1001",
            "1e-300",
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.text(max_size=12),
)
"""Text a user might pass as a number on the command line: hostile, huge, odd and fine ones."""
