"""The frozen random-number contract of algorithm v1: counter-based streams, the
transforms from stream words to values, the fused kernels and the portable math.
A change here changes bytes: the golden digests pin it."""
