"""Keras runs on the torch backend here (no TensorFlow): set before any test imports it."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")
