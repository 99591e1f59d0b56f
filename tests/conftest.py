"""Test-wide settings, applied before torch is imported anywhere."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see ptqlab/__init__.py: spinning threads on 2 cores
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
