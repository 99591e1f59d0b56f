"""Named PTQ recipes on real int8/int4 kernels; each says whether it can run here and, if not, why.

from ptqlab.backends import RECIPES, get_recipe, availability_table
result = get_recipe("ao-static-int8").apply(model, example_inputs, calibration_batches, observer="minmax")
"""

from __future__ import annotations

import torch
from torch import nn

from ptqlab.backends.base import QuantizedResult, Recipe, RecipeUnavailable
from ptqlab.backends.eager_static import AO_STATIC
from ptqlab.backends.onnxruntime import ORT_RECIPES
from ptqlab.backends.pt2e import PT2E_X86, compile_frozen, compiler_available
from ptqlab.backends.pt2e_smoothquant import PT2E_X86_SQ
from ptqlab.backends.quiet import silence_torch_ao_deprecations, silence_torchao_import_noise
from ptqlab.backends.smoothquant import AO_DYNAMIC_SQ
from ptqlab.backends.torch_ao import AO_DYNAMIC, BF16, FP32
from ptqlab.backends.torchao_recipes import (
    TORCHAO_INT4_WEIGHT_ONLY,
    TORCHAO_INT8_DYNAMIC,
    TORCHAO_INT8_STATIC,
    TORCHAO_INT8_WEIGHT_ONLY,
)

silence_torchao_import_noise()  # recipes import torchao lazily, so this runs before the first import
silence_torch_ao_deprecations()

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        FP32,
        BF16,
        AO_DYNAMIC,
        AO_DYNAMIC_SQ,
        AO_STATIC,
        PT2E_X86,
        PT2E_X86_SQ,
        TORCHAO_INT8_DYNAMIC,
        TORCHAO_INT8_WEIGHT_ONLY,
        TORCHAO_INT4_WEIGHT_ONLY,
        TORCHAO_INT8_STATIC,
        *ORT_RECIPES,
    )
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose from {', '.join(RECIPES)}")
    return RECIPES[name]


def availability_table(model: nn.Module, device: str | torch.device = "cpu") -> dict[str, tuple[bool, str]]:
    """recipe name -> (available, reason) for this model on this device."""
    return {name: r.availability(model, device) for name, r in RECIPES.items()}


__all__ = [
    "RECIPES",
    "QuantizedResult",
    "Recipe",
    "RecipeUnavailable",
    "availability_table",
    "compile_frozen",
    "compiler_available",
    "get_recipe",
]
