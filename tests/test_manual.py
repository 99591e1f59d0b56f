"""The seed tutorial's ManualQuantizer: each defect of the seed, shown on a concrete tensor, and its fix."""

import pytest
import torch

from ptqlab import ManualQuantizer, QuantSpec, dequantize, qparams_for


class SeedManualQuantizer:
    """The seed tutorial's code, verbatim in substance (kept here only to demonstrate its defects)."""

    def __init__(self, bits=8):
        self.qmin, self.qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def quantize_tensor(self, tensor):
        min_val, max_val = tensor.min(), tensor.max()
        scale = (max_val - min_val) / (self.qmax - self.qmin)
        zero_point = self.qmin - min_val / scale  # a float: never rounded, never clamped
        quantized = torch.clamp(torch.round(tensor / scale + zero_point), self.qmin, self.qmax)
        return quantized, scale, zero_point

    def dequantize_tensor(self, quantized, scale, zero_point):
        return (quantized - zero_point) * scale


X = torch.tensor([-0.73, 0.0, 0.41, 2.2])  # x[1] is an exact zero (think: a ReLU output or padding)


def test_seed_zero_point_is_fractional_and_zero_does_not_round_trip():
    q, scale, zp = SeedManualQuantizer(8).quantize_tensor(X)
    assert float(scale) == pytest.approx(2.93 / 255)
    assert float(zp) == pytest.approx(-128 + 0.73 * 255 / 2.93, rel=1e-5)  # -64.47...
    assert float(zp) % 1.0 != 0.0  # cannot be stored in an integer field
    x_hat = SeedManualQuantizer(8).dequantize_tensor(q, scale, zp)
    # 0.0 lands on code round(zp) = -64 and comes back as (-64 - zp)·scale = 0.47·scale, not 0
    assert int(q[1]) == -64
    assert float(x_hat[1]) == pytest.approx((-64 - float(zp)) * float(scale), rel=1e-5)
    assert float(x_hat[1]) != 0.0 and abs(float(x_hat[1])) > 0.4 * float(scale)


def test_fixed_zero_point_is_an_integer_and_zero_round_trips():
    mq = ManualQuantizer(bits=8)
    codes, scale, zp = mq.quantize_tensor(X)
    assert isinstance(zp, int) and isinstance(scale, float)
    assert codes.dtype == torch.int8
    assert zp == -128 - round(-0.73 / scale) == -64
    x_hat = mq.dequantize_tensor(codes, scale, zp)
    assert x_hat[1].item() == 0.0  # exactly
    assert int(codes[1]) == zp
    assert float((x_hat - X).abs().max()) <= scale / 2 * (1 + 1e-5)
    # the teaching entry point is the exact core underneath
    spec = QuantSpec(bits=8, symmetric=False)
    qp = qparams_for(X, spec)
    assert scale == float(qp.scale) and zp == int(qp.zero_point)
    assert torch.equal(x_hat, dequantize(codes, qp, spec))


@pytest.mark.parametrize("value", [0.5, -3.0, 0.0])
def test_seed_divides_by_zero_on_a_constant_tensor(value):
    x = torch.full((6,), value)
    q, scale, zp = SeedManualQuantizer(8).quantize_tensor(x)
    assert float(scale) == 0.0
    x_hat = SeedManualQuantizer(8).dequantize_tensor(q, scale, zp)
    assert not bool(torch.isfinite(torch.as_tensor(zp)).all()) or not bool(torch.isfinite(q).all())
    assert not bool(torch.isfinite(x_hat).all())  # NaN (0/0, inf-inf or inf·0) everywhere


@pytest.mark.parametrize("value", [0.5, -3.0, 0.0])
def test_fixed_constant_tensor_gets_a_valid_scale(value):
    x = torch.full((6,), value)
    mq = ManualQuantizer(bits=8)
    codes, scale, zp = mq.quantize_tensor(x)
    assert scale > 0.0 and mq.qmin <= zp <= mq.qmax
    x_hat = mq.dequantize_tensor(codes, scale, zp)
    assert bool(torch.isfinite(x_hat).all())
    # the range is widened to [min(v, 0), max(v, 0)], so v itself is an end of the grid
    assert float((x_hat - x).abs().max()) <= scale / 2 * (1 + 1e-5)
    if value == 0.0:
        assert scale == torch.finfo(torch.float32).eps  # the eps floor; zeros come back exactly
        assert torch.equal(x_hat, x)


@pytest.mark.parametrize("bits", [2, 4, 8, 16])
@pytest.mark.parametrize("symmetric", [True, False])
def test_manual_quantizer_round_trip(bits, symmetric):
    x = torch.linspace(-1.0, 3.0, 41)
    mq = ManualQuantizer(bits=bits, symmetric=symmetric)
    codes, scale, zp = mq.quantize_tensor(x)
    assert (mq.qmin, mq.qmax) == (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    assert int(codes.min()) >= mq.qmin and int(codes.max()) <= mq.qmax
    x_hat = mq.dequantize_tensor(codes, scale, zp)
    assert float((x_hat - x).abs().max()) <= scale / 2 * (1 + 1e-4)
    assert x_hat[10].item() == 0.0  # x[10] == 0.0
    if symmetric:
        assert zp == 0


# The seed tutorial's "Example usage" block (ptq-tutorial.md, after its ManualQuantizer), copied verbatim.
SEED_EXAMPLE_USAGE = r"""# Example usage
print("Manual Quantization Demo\n")
print("=" * 60)

# Create a sample weight tensor
weight_fp32 = torch.randn(4, 4) * 2
print("Original FP32 Weights:")
print(weight_fp32)
print(f"Min: {weight_fp32.min():.4f}, Max: {weight_fp32.max():.4f}")
print(f"Memory: {weight_fp32.element_size() * weight_fp32.nelement()} bytes\n")

# Quantize
quantizer = ManualQuantizer()
weight_int8, scale, zero_point = quantizer.quantize_tensor(weight_fp32)

print("Quantized INT8 Weights:")
print(weight_int8)
print(f"Scale: {scale:.6f}, Zero Point: {zero_point:.6f}")
print(f"Memory: {weight_int8.element_size() * weight_int8.nelement()} bytes\n")

# Dequantize
weight_dequantized = quantizer.dequantize_tensor(weight_int8, scale, zero_point)

print("Dequantized Weights:")
print(weight_dequantized)

# Calculate quantization error
error = torch.abs(weight_fp32 - weight_dequantized).mean()
print(f"\nQuantization Error (MAE): {error:.6f}")
print(f"Compression Ratio: {weight_fp32.element_size() / weight_int8.element_size()}√ó")
"""


def test_seed_example_usage_block_runs_verbatim(capsys):
    scope = {"torch": torch, "nn": torch.nn, "ManualQuantizer": ManualQuantizer}
    exec(compile(SEED_EXAMPLE_USAGE, "ptq-tutorial.md", "exec"), scope)
    out = capsys.readouterr().out
    assert "Manual Quantization Demo" in out and "Quantization Error (MAE)" in out
    w, w_hat = scope["weight_fp32"], scope["weight_dequantized"]
    assert scope["weight_int8"].dtype == torch.int8 and isinstance(scope["zero_point"], int)
    assert float((w - w_hat).abs().max()) <= scope["scale"] / 2 * (1 + 1e-5)
    spec = QuantSpec(bits=8, symmetric=False)
    assert torch.equal(w_hat, dequantize(scope["weight_int8"], qparams_for(w, spec), spec))


def test_seed_calls_work_on_the_class_on_an_instance_and_with_num_bits():
    w = torch.randn(4, 4) * 2
    q8, s8, z8 = ManualQuantizer.quantize_tensor(w)  # the seed's @staticmethod call
    assert (q8, s8, z8)[1:] == ManualQuantizer().quantize_tensor(w)[1:]
    assert torch.equal(q8, ManualQuantizer().quantize_tensor(w)[0])
    q4, s4, z4 = ManualQuantizer().quantize_tensor(w, num_bits=4)
    assert int(q4.min()) >= -8 and int(q4.max()) <= 7 and isinstance(z4, int)
    spec4 = QuantSpec(bits=4, symmetric=False)
    qp4 = qparams_for(w, spec4)
    assert s4 == float(qp4.scale) and z4 == int(qp4.zero_point)
    assert torch.equal(ManualQuantizer.quantize_tensor(w, num_bits=4)[0], q4)
    assert torch.equal(ManualQuantizer(bits=4).quantize_tensor(w)[0], q4)
    assert torch.equal(ManualQuantizer.dequantize_tensor(q4, s4, z4), dequantize(q4, qp4, spec4))
    assert torch.equal(
        ManualQuantizer.dequantize_tensor(q8, s8, z8), ManualQuantizer().dequantize_tensor(q8, s8, z8)
    )
    with pytest.raises(TypeError, match="num_bits must be an int"):
        ManualQuantizer.quantize_tensor(w, num_bits=4.0)
    with pytest.raises(ValueError, match="bits must be in"):
        ManualQuantizer.quantize_tensor(w, num_bits=1)
    with pytest.raises(TypeError, match="zero_point must be an integer"):
        ManualQuantizer.dequantize_tensor(q8, s8, 0.5)
