"""The Keras importer: a Keras model's JSON as the tensors Keras 3 builds for it."""
