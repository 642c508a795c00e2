"""A CNN in PyTorch, described by ``spec_from_model`` on the meta device (no memory, no
init cost), with ResNet's conv init, then filled from a weightinit server.

    python examples/torch_cnn.py --server http://127.0.0.1:8000

``spec_from_model`` writes each module with torch's own defaults; here the convolutions
then get He normal in fan_out mode, as torchvision's ResNet does. torch_cnn.json is the
spec this builds (the script checks they agree), for use without Python:
``weightinit init examples/torch_cnn.json -o cnn.safetensors``.
"""

from __future__ import annotations

from typing import Any

import torch
from common import fetch_weights, load_spec, parse_args
from torch import nn

from weightinit.torch import empty_weights, load_weights, spec_from_model

SEED = 1234
CONV_INIT = {"name": "kaiming_normal", "mode": "fan_out", "nonlinearity": "relu"}


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Linear(64 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def build_spec(model: nn.Module) -> dict[str, Any]:
    spec = spec_from_model(model, SEED)
    for layer in spec["layers"]:
        if layer["type"] == "conv2d":
            layer["weight_init"] = CONV_INIT
    return spec


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    with empty_weights():  # parameters on meta, BatchNorm's buffers real
        model = CNN()
    spec = build_spec(model)
    if spec != load_spec("torch_cnn"):
        raise SystemExit("torch_cnn.json differs from what spec_from_model gives")
    weights = fetch_weights(args, spec)
    load_weights(model, weights)  # meta tensors are replaced (assign), strict=True
    model.eval()
    logits = model(torch.zeros(2, 1, 28, 28))
    conv = model.features[0].weight
    # He normal, fan_out = 32 * 3 * 3: std sqrt(2 / 288).
    print(f"torch_cnn: loaded {len(model.state_dict())} tensors on {conv.device}, logits "
          f"{tuple(logits.shape)}, conv std {conv.std().item():.4f} "
          f"(expected {(2 / 288) ** 0.5:.4f})")


if __name__ == "__main__":
    main()
