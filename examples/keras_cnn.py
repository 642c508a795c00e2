"""A Keras 3 CNN (torch backend) whose weights come from a weightinit server.

    python examples/keras_cnn.py --server http://127.0.0.1:8000 [--from-model]

keras_cnn.json uses the keras convention: kernels (kh, kw, in, out), names that are
Keras weight paths (``conv1/kernel``, ``bn1/moving_variance``) and Keras' own defaults
(glorot_uniform kernels, zero biases), with Keras' truncated ``he_normal`` for conv2, as
the model declares it (so ``--from-model``, which sends the model itself, agrees).
The model is a Sequential named ``cnn`` built with ``keras.Input``, so its paths read
``cnn/conv1/kernel``: ``load_weights`` matches them either way.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # imported after KERAS_BACKEND is chosen
import numpy as np
from common import fetch_weights, load_spec, parse_args

from weightinit.keras import load_weights, spec_from_model


def build_model() -> keras.Model:
    layers = keras.layers
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 3, name="conv1"), layers.BatchNormalization(name="bn1"),
        layers.ReLU(), layers.MaxPooling2D(),
        layers.Conv2D(64, 3, name="conv2", kernel_initializer="he_normal"),
        layers.BatchNormalization(name="bn2"),
        layers.ReLU(), layers.MaxPooling2D(),
        layers.Flatten(), layers.Dense(10, name="head"),
    ], name="cnn")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], keras=True)
    model = build_model()
    # The spec file, or the model itself: the server reads its layers and initializers.
    spec = spec_from_model(model, seed=1234) if args.from_model else load_spec("keras_cnn")
    weights = fetch_weights(args, spec)
    load_weights(model, weights)  # strict: every weight, every tensor
    logits = model.predict(np.zeros((2, 28, 28, 1), np.float32), verbose=0)
    kernel = model.get_layer("conv2").kernel.numpy()
    # Keras he_normal: truncated at 2 std, std sqrt(2 / fan_in), fan_in = 3 * 3 * 32.
    print(f"keras_cnn: assigned {len(model.weights)} weights, logits {logits.shape}, conv2 std "
          f"{kernel.std():.4f} (expected {(2 / 288) ** 0.5:.4f})")


if __name__ == "__main__":
    main()
