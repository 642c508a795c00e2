"""An MLP in PyTorch, initialized by a weightinit server and loaded with strict=True.

    python examples/torch_mlp.py --server http://127.0.0.1:8000

The spec (torch_mlp.json) asks for He (kaiming) uniform hidden layers and torch's own
default for the output layer; the file's tensor names are the model's state_dict keys.
"""

from __future__ import annotations

import torch
from common import load_spec, parse_args
from torch import nn

from weightinit import Client
from weightinit.torch import load_weights


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.fc2 = nn.Linear(256, 128)
        self.out = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    spec = load_spec("torch_mlp")
    model = MLP()
    with Client(args.server, token=args.token) as client:
        if args.output:
            client.init(spec, args.output, progress=True, verify_sha256=True)
            weights = args.output
        else:
            weights = client.init(spec, verify_sha256=True)
    load_weights(model, weights)  # strict: every key, nothing extra
    logits = model(torch.zeros(2, 784))
    # He uniform with gain sqrt(2): U(+-sqrt(6 / fan_in)), variance 2 / fan_in.
    print(f"torch_mlp: loaded {len(model.state_dict())} tensors, logits {tuple(logits.shape)}, "
          f"fc1.weight variance {model.fc1.weight.var().item():.3e} (expected {2 / 784:.3e})")


if __name__ == "__main__":
    main()
