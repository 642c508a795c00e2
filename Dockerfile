# weightinit service image.
#
#   docker build -t weightinit . && docker run --rm -p 8000:8000 weightinit
#
# BASE is the official slim CPython image, pinned to a patch release. CI builds this
# same file against a local Debian stand-in (see .ci/deploy-check.sh), so nothing
# below may rely on paths that only the official image has: the file only ever
# calls `python3`, and both stages use the same BASE, so the virtualenv copied from
# the builder points at an interpreter that exists in the final stage.
#
# Dependencies come from requirements.lock (exact versions + sha256 hashes, runtime
# deps + the `fast` extra). Regenerate it with deploy/lock.sh (see docs/deploy.md).
#
# EXTRAS=hf adds the `[hf]` extra (the `huggingface` spec source: transformers and a
# CPU-only torch). The default image stays slim. PyPI's torch wheel for linux is the
# multi-GB CUDA build, so torch comes from a local CPU wheel placed in deploy/wheels/
# (bind-mounted into the build, never copied into a layer) and installed without
# dependencies; its dependencies and transformers come from requirements-hf.lock:
#
#   cp torch-2.13.0+cpu-cp311-*.whl deploy/wheels/
#   docker build --build-arg EXTRAS=hf -t weightinit:hf .
ARG BASE=python:3.11.14-slim-bookworm

# --------------------------------------------------------------------------- builder
FROM ${BASE} AS builder

# Optional, for builds behind a mirror or a TLS-inspecting proxy. When not passed
# they stay unset and pip uses its defaults.
ARG PIP_INDEX_URL
ARG PIP_CERT
# "" (the slim image) or "hf" (see above).
ARG EXTRAS=""

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# Locked dependencies first, so this layer is cached across source edits.
# Binary wheels only: nothing is compiled, so no compiler is needed anywhere.
COPY requirements.lock requirements-build.lock requirements-hf.lock ./
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-hashes --only-binary=:all: -r requirements.lock \
    && python3 -m venv /opt/build \
    && /opt/build/bin/pip install --require-hashes --only-binary=:all: -r requirements-build.lock

# The [hf] extra, only with EXTRAS=hf: the local CPU torch wheel (no dependencies, no
# index), then its dependencies and transformers, locked and hashed.
RUN --mount=type=bind,source=deploy/wheels,target=/local-wheels \
    case "${EXTRAS}" in \
      "") echo "slim image: no [hf] extra" ;; \
      hf) set -- /local-wheels/torch-*+cpu-*.whl \
          && if [ ! -f "$1" ] || [ "$#" -ne 1 ]; then \
               echo "EXTRAS=hf needs exactly one CPU torch wheel (torch-*+cpu-*.whl) in deploy/wheels/" >&2; exit 1; \
             fi \
          && /opt/venv/bin/pip install --no-deps --no-index "$1" \
          && /opt/venv/bin/pip install --require-hashes --only-binary=:all: -r requirements-hf.lock \
          && /opt/venv/bin/python3 -c "import torch, transformers; assert torch.__version__.endswith('+cpu'), torch.__version__" ;; \
      *) echo "EXTRAS is \"\" or \"hf\", not \"${EXTRAS}\"" >&2; exit 1 ;; \
    esac

# The project's own wheel, built with the locked setuptools (no isolation, so no
# unpinned download of the build backend).
COPY pyproject.toml README.md ./
COPY weightinit ./weightinit
COPY core ./core
COPY service ./service
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

# --------------------------------------------------------------------------- runtime
FROM ${BASE} AS runtime

LABEL org.opencontainers.image.title="weightinit" \
      org.opencontainers.image.description="Deterministic, streamed model-weight initialization as a service (safetensors out)." \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NUMBA_CACHE_DIR=/tmp/numba-cache

# Fixed numeric ids so Kubernetes' runAsNonRoot can check them (deploy/base).
RUN groupadd --system --gid 10001 weightinit \
    && useradd --no-log-init --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin weightinit

# Dependencies from the builder, then the project wheel without resolving anything.
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /wheels /tmp/wheels
# `weightinit --help` imports the whole package: a wheel missing a module fails the
# build here rather than at start-up. Whatever it leaves in /tmp (numba's cache,
# owned by root) is removed so the runtime user starts with an empty /tmp.
RUN /opt/venv/bin/pip install --no-deps --no-index /tmp/wheels/weightinit-*.whl \
    && weightinit --help > /dev/null \
    && rm -rf /tmp/wheels /tmp/numba-cache

USER 10001:10001
WORKDIR /tmp

EXPOSE 8000
STOPSIGNAL SIGTERM

# Liveness only (the process answers); readiness is /readyz, which Kubernetes probes.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/opt/venv/bin/python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

ENTRYPOINT ["weightinit"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
