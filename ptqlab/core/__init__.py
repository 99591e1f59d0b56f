"""The affine quantizer and its error metrics: imports torch and the standard library only.

spec      QuantSpec (bits, signed, symmetric, narrow range) and PerTensor / PerChannel / PerGroup
affine    choose_qparams → quantize → dequantize (x_q = clamp(round(x/s) + z), x̂ = (x_q − z)·s)
metrics   MSE, SQNR, cosine, rounding vs clipping error split
checks    argument validation shared by every entry point
manual    the seed tutorial's ManualQuantizer, on this core
progress  one convention for progress bars on long loops
"""
