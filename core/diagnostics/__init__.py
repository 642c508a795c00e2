"""Diagnostics: signal propagation through depth, histograms against the
initializers' densities, and the activations' Gaussian moments."""
