"""Three architecture-faithful small vision models for the 8×8 digits: ResNet-, MobileNetV2- and ViT-style.

They are NOT the ImageNet models: they keep each family's building blocks (what makes the family easy or
hard to quantize) at a size that trains on the digits in well under a minute on 2 CPU cores.

* ``ResNetStyle`` (He et al. 2016, "Deep Residual Learning"): a conv-BN-ReLU stem and three basic blocks
  y = relu(F(x) + P(x)), F = conv3×3-BN-ReLU-conv3×3-BN, P = identity or conv1×1-BN when the shape changes;
  global average pool, Linear. 32 → 64 → 128 channels, 8×8 → 4×4 → 2×2.
* ``MobileNetV2Style`` (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks"):
  inverted residual blocks: expand 1×1 (×t) -BN-ReLU6, depthwise 3×3 -BN-ReLU6, project 1×1 -BN with no
  activation (the linear bottleneck), x + block(x) when stride 1 and widths match.
* ``ViTStyle`` (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words"): 2×2 patches embedded by a
  strided conv, a class token and learned position embeddings, pre-LN blocks
  x ← x + Attn(LN(x)), x ← x + MLP(LN(x)) with softmax(QKᵀ/√d)V attention and a GELU MLP; the class
  token's final LayerNorm feeds the head. Softmax and GELU are modules (``attn.softmax``, ``mlp.gelu``) so
  hooks can read the activations they produce.

Every block keeps Conv→BN pairs inside ``nn.Sequential`` so ``ptqlab.ptq.folding`` and the engines' fusion
passes find them.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


def conv_bn(cin: int, cout: int, k: int, stride: int = 1, *, groups: int = 1, act: type | None = nn.ReLU):
    """[conv k×k (no bias), BatchNorm, act] as (name, module) pairs."""
    layers = [
        ("conv", nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)),
        ("bn", nn.BatchNorm2d(cout)),
    ]
    return layers + ([("act", act())] if act is not None else [])


class BasicBlock(nn.Module):
    """y = relu(F(x) + P(x)) (He et al. 2016)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        first = [(f"{n}1", m) for n, m in conv_bn(cin, cout, 3, stride)]
        second = [(f"{n}2", m) for n, m in conv_bn(cout, cout, 3, act=None)]
        self.body = nn.Sequential(OrderedDict(first + second))
        same = stride == 1 and cin == cout
        self.shortcut = (
            nn.Identity() if same else nn.Sequential(OrderedDict(conv_bn(cin, cout, 1, stride, act=None)))
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResNetStyle(nn.Sequential):
    """Stem conv-BN-ReLU (32), basic blocks 32 → 64 (stride 2) → 128 (stride 2), avg pool, Linear(128, 10)."""

    def __init__(self, widths: tuple[int, int, int] = (32, 64, 128)) -> None:
        w1, w2, w3 = widths
        super().__init__(
            OrderedDict(
                [
                    ("stem", nn.Sequential(OrderedDict(conv_bn(1, w1, 3)))),
                    ("block1", BasicBlock(w1, w1, 1)),
                    ("block2", BasicBlock(w1, w2, 2)),
                    ("block3", BasicBlock(w2, w3, 2)),
                    ("pool", nn.AdaptiveAvgPool2d(1)),
                    ("flatten", nn.Flatten()),
                    ("fc", nn.Linear(w3, 10)),
                ]
            )
        )


class InvertedResidual(nn.Module):
    """expand 1×1-BN-ReLU6 (if t > 1), depthwise 3×3-BN-ReLU6, project 1×1-BN (linear); + x when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers = []
        if expand != 1:
            layers += [(f"expand_{n}", m) for n, m in conv_bn(cin, hidden, 1, act=nn.ReLU6)]
        layers += [(f"dw_{n}", m) for n, m in conv_bn(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6)]
        layers += [(f"project_{n}", m) for n, m in conv_bn(hidden, cout, 1, act=None)]
        self.conv = nn.Sequential(OrderedDict(layers))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


MOBILENET_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 2, 2),
    (6, 64, 1, 1),
)  # (t, c, n, s) as in the paper


class MobileNetV2Style(nn.Sequential):
    """Stem conv-BN-ReLU6 (16), inverted residuals per ``MOBILENET_SETTINGS``, 1×1 to 128, pool, Linear."""

    def __init__(self, settings=MOBILENET_SETTINGS, last: int = 128) -> None:
        layers = [("stem", nn.Sequential(OrderedDict(conv_bn(1, 16, 3, act=nn.ReLU6))))]
        cin, k = 16, 0
        for t, c, n, s in settings:
            for i in range(n):
                layers.append((f"block{k}", InvertedResidual(cin, c, s if i == 0 else 1, t)))
                cin, k = c, k + 1
        layers += [
            ("last", nn.Sequential(OrderedDict(conv_bn(cin, last, 1, act=nn.ReLU6)))),
            ("pool", nn.AdaptiveAvgPool2d(1)),
            ("flatten", nn.Flatten()),
            ("fc", nn.Linear(last, 10)),
        ]
        super().__init__(OrderedDict(layers))


class Attention(nn.Module):
    """softmax(Q Kᵀ / √d) V over ``heads`` heads, then a Linear projection."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.softmax = nn.Softmax(dim=-1)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = self.softmax((q @ k.transpose(-2, -1)) * self.scale)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class EncoderBlock(nn.Module):
    """Pre-LN: x ← x + Attn(LN(x)); x ← x + MLP(LN(x)), MLP = Linear-GELU-Linear."""

    def __init__(self, dim: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            OrderedDict([("fc1", nn.Linear(dim, mlp)), ("gelu", nn.GELU()), ("fc2", nn.Linear(mlp, dim))])
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class ViTStyle(nn.Module):
    """2×2 patches → 16 tokens + class token, ``depth`` pre-LN blocks (dim 64, 4 heads, MLP 128), LN, head."""

    def __init__(self, dim: int = 64, depth: int = 4, heads: int = 4, mlp: int = 128, patch: int = 2) -> None:
        super().__init__()
        tokens = (8 // patch) ** 2
        self.patch_embed = nn.Conv2d(1, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[EncoderBlock(dim, heads, mlp) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(x))[:, 0])


VISION_ARCHITECTURES: dict[str, type[nn.Module]] = {
    "resnet": ResNetStyle,
    "mobilenetv2": MobileNetV2Style,
    "vit": ViTStyle,
}
VISION_LABELS = {
    "resnet": "ResNet-style on digits",
    "mobilenetv2": "MobileNetV2-style on digits",
    "vit": "ViT-style on digits",
}


def check_architecture(name) -> str:
    """``name`` if it is one of ``VISION_ARCHITECTURES``, else a ValueError/TypeError naming ``name``."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name not in VISION_ARCHITECTURES:
        raise ValueError(f"unknown architecture name {name!r}; choose from {', '.join(VISION_ARCHITECTURES)}")
    return name
