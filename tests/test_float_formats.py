"""Float formats: the bit split's derived constants equal torch.finfo, and ptqlab's own rounding equals
torch's cast to float16/bfloat16/float8_e4m3fn/float8_e5m2 element for element (ties, subnormals, overflow)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ptqlab.core.float_formats import (
    FORMATS,
    cast_round_trip,
    format_table,
    get_format,
    representable_values,
    round_to_format,
    scaled_round_trip,
    spacing,
)

LOW_PRECISION = ["fp16", "bf16", "fp8_e4m3", "fp8_e5m2"]


@pytest.mark.parametrize("name", FORMATS)
def test_constants_equal_torch_finfo(name):
    fmt, info = FORMATS[name], torch.finfo(FORMATS[name].dtype)
    assert (fmt.max, fmt.min_normal, fmt.epsilon, fmt.bits) == (
        info.max,
        info.smallest_normal,
        info.eps,
        info.bits,
    )


@pytest.mark.parametrize("name", LOW_PRECISION)
def test_enumerated_values_match_the_formula(name):
    fmt, values = FORMATS[name], representable_values(name)
    positive = values[values > 0]
    assert positive.min() == fmt.min_subnormal and positive.max() == fmt.max
    # count: 2 signs × (finite bit patterns) − the duplicate −0
    finite_patterns = 2**fmt.exponent_bits * 2**fmt.mantissa_bits - (2**fmt.mantissa_bits if fmt.ieee else 1)
    assert len(values) == 2 * finite_patterns - 1
    # neighbours in [1, 2) are epsilon apart
    in_binade = values[(values >= 1) & (values < 2)]
    assert torch.allclose(in_binade.diff(), torch.full_like(in_binade.diff(), fmt.epsilon))


def hard_inputs(name):
    """Every representable value, every midpoint between neighbours (exact ties), just off the ties, and
    values past max."""
    v = representable_values(name) if FORMATS[name].bits <= 16 else None
    mid = (v[1:] + v[:-1]) / 2
    nudged = torch.cat([mid * (1 + 2.0**-20), mid * (1 - 2.0**-20)])
    big = torch.tensor([FORMATS[name].max * k for k in (1.0001, 1.03, 1.2, 2.0, 1e3)], dtype=torch.float64)
    x = torch.cat([v, mid, nudged, big, -big]).to(torch.float32)
    return x[torch.isfinite(x)]


@pytest.mark.parametrize("name", LOW_PRECISION)
def test_round_to_format_equals_torch_cast_on_ties_and_overflow(name):
    x = hard_inputs(name)
    if name == "bf16":  # 65k values: a sample keeps this fast
        x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:40000]]
    assert torch.equal(round_to_format(x, name), cast_round_trip(x, name))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(LOW_PRECISION),
    st.floats(width=32, allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
)
def test_round_to_format_equals_torch_cast_property(name, value):
    x = torch.tensor([value], dtype=torch.float32)
    assert torch.equal(round_to_format(x, name), cast_round_trip(x, name))


def test_real_weights_round_trip_equals_cast_and_relative_error_is_bounded():
    w = torch.randn(4096, generator=torch.Generator().manual_seed(2)) * 0.05
    for name in LOW_PRECISION:
        fmt = get_format(name)
        ours = round_to_format(w, fmt)
        assert torch.equal(ours, cast_round_trip(w, fmt))
        normal = w.abs() >= fmt.min_normal
        assert ((ours - w).abs()[normal] <= spacing(w, fmt)[normal] / 2).all()


def test_scaled_fp8_keeps_the_largest_value_and_table():
    x = torch.tensor([-3.0, 0.1, 2.0])
    assert scaled_round_trip(x, "fp8_e4m3")[0] == -3.0
    assert [r["format"] for r in format_table()] == list(FORMATS)
    with pytest.raises(ValueError, match=r"^format must be one of"):
        get_format("fp4")
    with pytest.raises(ValueError, match=r"^x contains non-finite"):
        round_to_format(torch.tensor([float("nan")]), "fp16")
