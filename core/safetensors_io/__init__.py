"""The safetensors format: the one writer (header, then streamed data), the one
header reader, and writing/verifying whole files."""
