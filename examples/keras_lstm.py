"""A Keras 3 text model (torch backend): Embedding, a bidirectional LSTM and a GRU, with
weights from a weightinit server.

    python examples/keras_lstm.py --server http://127.0.0.1:8000 [--from-model]

keras_lstm.json gives Keras' own defaults: embeddings U(-0.05, 0.05), kernels
glorot_uniform, recurrent kernels orthogonal, biases zero except the LSTM forget gate at
one (``unit_forget_bias``), the GRU's bias (2, 3u) as ``reset_after`` has it. A
bidirectional layer is ``Bidirectional(LSTM(u, name=n), name=n)``, which gives the
paths ``n/forward_n/lstm_cell/kernel``.
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
        keras.Input((20,), dtype="int32"),
        layers.Embedding(1000, 32, name="embed"),
        layers.Bidirectional(layers.LSTM(48, return_sequences=True, name="encoder"),
                             name="encoder"),
        layers.GRU(32, name="gru"),
        layers.Dense(1, name="out"),
    ], name="text")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], keras=True)
    model = build_model()
    # The spec file, or the model itself: the server reads its layers and initializers.
    spec = spec_from_model(model, seed=1234) if args.from_model else load_spec("keras_lstm")
    weights = fetch_weights(args, spec)
    load_weights(model, weights)  # strict: every weight, every tensor
    scores = model.predict(np.zeros((2, 20), np.int32), verbose=0)
    bias = model.get_layer("encoder").forward_layer.cell.bias.numpy()
    forget = bias[48:96]
    print(f"keras_lstm: assigned {len(model.weights)} weights, scores {scores.shape}, forget-gate "
          f"bias all one: {bool((forget == 1).all())}")


if __name__ == "__main__":
    main()
