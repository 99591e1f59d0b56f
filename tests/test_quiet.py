"""torchao's two expected CPU-import messages are silenced; every other message still gets through."""

import logging
import subprocess
import sys

from ptqlab.backends.quiet import silence_torchao_import_noise


def test_importing_torchao_through_ptqlab_prints_no_noise():
    code = "import ptqlab.backends; import torchao.quantization; from ptqlab.backends.hardware import hardware_facts; hardware_facts('cpu')"
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    assert "Failed to load" not in err and "_pytree" not in err, err


def test_other_torchao_warnings_still_pass(caplog):
    silence_torchao_import_noise()
    logger = logging.getLogger("torchao")
    with caplog.at_level(logging.WARNING, logger="torchao"):
        logger.warning("Failed to load /x/torchao/_C_mxfp8.cpython-310-x86_64-linux-gnu.so: no GPU")
        logger.warning("Failed to load /x/torchao/_C_cpu_kernels.so: a real problem")
        logger.warning("something else entirely")
    assert [r.getMessage() for r in caplog.records] == [
        "Failed to load /x/torchao/_C_cpu_kernels.so: a real problem",
        "something else entirely",
    ]


def test_torch_ao_runs_without_its_two_expected_warnings():
    """The x86 engine's reduce_range and quantized-tensor deprecation warnings are dropped; others still show."""
    code = (
        "import warnings, torch; from torch import nn; import ptqlab.backends\n"
        "m = torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.Linear(8, 4)), {nn.Linear}, dtype=torch.qint8)\n"
        "m(torch.randn(2, 8)); warnings.warn('a real warning from ptqlab')\n"
    )
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    assert "quant_min and quant_max" not in err and "quantized tensor creation" not in err, err
    assert "a real warning from ptqlab" in err
