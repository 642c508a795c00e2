"""The Python client: HTTP connections, retries, parallel fetch from replicas, and
receiving safetensors bodies into files or memory."""
