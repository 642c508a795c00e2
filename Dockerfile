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
ARG BASE=python:3.11.14-slim-bookworm

# --------------------------------------------------------------------------- builder
FROM ${BASE} AS builder

# Optional, for builds behind a mirror or a TLS-inspecting proxy. When not passed
# they stay unset and pip uses its defaults.
ARG PIP_INDEX_URL
ARG PIP_CERT

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# Locked dependencies first, so this layer is cached across source edits.
# Binary wheels only: nothing is compiled, so no compiler is needed anywhere.
COPY requirements.lock requirements-build.lock ./
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-hashes --only-binary=:all: -r requirements.lock \
    && python3 -m venv /opt/build \
    && /opt/build/bin/pip install --require-hashes --only-binary=:all: -r requirements-build.lock

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
