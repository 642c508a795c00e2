"""Fast checks of the deployment files: no network, no container engine, no cluster.

The Kubernetes checks run on the output of `kubectl kustomize` (skipped when kubectl
is not installed); the file-level checks parse the YAML directly. .ci/deploy-check.sh
does the slow part (building and running the image, schema validation).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to parse the manifests")
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli", reason="tomli is needed on Python 3.10")

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "base"
PROD = ROOT / "deploy" / "overlays" / "production"
DEPLOY_FILES = sorted((ROOT / "deploy").rglob("*.yaml")) + sorted((ROOT / "deploy").rglob("*.yml"))

PRESTOP_S = 5  # preStop sleep in deploy/base/deployment.yaml


def _render(path: Path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        # .ci/deploy-check.sh installs kubectl and sets this: there, a skip would hide
        # every Kubernetes check of the rehearsal.
        if os.environ.get("WEIGHTINIT_REQUIRE_KUBECTL") == "1":
            pytest.fail("kubectl is required here (WEIGHTINIT_REQUIRE_KUBECTL=1)")
        pytest.skip("kubectl is not installed: cannot render kustomize output")
    out = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module", params=["base", "production"])
def rendered(request) -> tuple[str, dict[str, dict]]:
    docs = _render(BASE if request.param == "base" else PROD)
    by_kind: dict[str, dict] = {}
    for d in docs:
        assert d["kind"] not in by_kind, f"two objects of kind {d['kind']}"
        by_kind[d["kind"]] = d
    return request.param, by_kind


def _container(by_kind: dict[str, dict]) -> dict:
    containers = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def _mem_mib(q: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Mi|Gi)", q)
    assert m, f"unexpected memory quantity {q!r}"
    return float(m[1]) * (1024 if m[2] == "Gi" else 1)


def _cpu(q: str | int) -> float:
    q = str(q)
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


# ----------------------------------------------------------------- plain YAML files


@pytest.mark.parametrize("path", DEPLOY_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_deploy_yaml_parses(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path} is empty"


def test_kustomization_lists_every_base_file() -> None:
    k = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    listed = set(k["resources"])
    on_disk = {p.name for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert listed == on_disk


# ----------------------------------------------------------------- rendered objects


def test_expected_objects(rendered) -> None:
    _, by_kind = rendered
    assert set(by_kind) == {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceAccount",
    }
    for obj in by_kind.values():
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "weightinit"


def test_probes(rendered) -> None:
    _, by_kind = rendered
    c = _container(by_kind)
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8000}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] in ("http", 8000)
    # Startup gets longer than liveness would allow, for the imports.
    s = c["startupProbe"]
    assert s["periodSeconds"] * s["failureThreshold"] >= 30


def test_security_context(rendered) -> None:
    _, by_kind = rendered
    pod = by_kind["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's USER
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    sc = _container(by_kind)["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["runAsNonRoot"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert "add" not in sc["capabilities"]
    assert sc["seccompProfile"]["type"] == "RuntimeDefault"
    # The only writable path is an emptyDir on /tmp.
    mounts = {m["mountPath"]: m["name"] for m in _container(by_kind)["volumeMounts"]}
    assert mounts == {"/tmp": "tmp"}
    vols = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in vols["tmp"]


def test_service_account(rendered) -> None:
    _, by_kind = rendered
    sa = by_kind["ServiceAccount"]
    assert sa["automountServiceAccountToken"] is False
    pod = by_kind["Deployment"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == sa["metadata"]["name"]


def test_api_tokens_come_from_an_optional_secret(rendered) -> None:
    _, by_kind = rendered
    env = _env(_container(by_kind))
    ref = env["WEIGHTINIT_API_TOKENS"]["valueFrom"]["secretKeyRef"]
    assert ref["optional"] is True
    assert ref["name"] and ref["key"]
    assert "value" not in env["WEIGHTINIT_API_TOKENS"]


def test_allowed_hosts_are_on_and_name_the_service(rendered) -> None:
    """DNS rebinding: the deployment answers only Host names of its Service."""
    _, by_kind = rendered
    env = _env(_container(by_kind))
    hosts = env["WEIGHTINIT_ALLOWED_HOSTS"]["value"].split(",")
    service = by_kind["Service"]["metadata"]["name"]
    assert service in hosts and f"{service}.$(POD_NAMESPACE).svc" in hosts
    names = list(env)
    assert names.index("POD_NAMESPACE") < names.index("WEIGHTINIT_ALLOWED_HOSTS")
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert "localhost" in compose["services"]["weightinit"]["environment"][
        "WEIGHTINIT_ALLOWED_HOSTS"].split(",")


def test_grace_period_covers_prestop_and_drain(rendered) -> None:
    _, by_kind = rendered
    pod = by_kind["Deployment"]["spec"]["template"]["spec"]
    c = _container(by_kind)
    drain = float(_env(c)["WEIGHTINIT_DRAIN_TIMEOUT_S"]["value"])
    assert drain == 30
    cmd = c["lifecycle"]["preStop"]["exec"]["command"]
    assert cmd[0] == "sleep"
    pre_stop = float(cmd[1])
    assert pre_stop == PRESTOP_S
    assert pod["terminationGracePeriodSeconds"] == 45
    assert pod["terminationGracePeriodSeconds"] > pre_stop + drain


def test_resources_fit_the_streaming_peak(rendered) -> None:
    name, by_kind = rendered
    r = _container(by_kind)["resources"]
    peak_mib = 512  # benchmark: peak RSS while streaming stays under ~512 MiB
    assert _mem_mib(r["limits"]["memory"]) >= peak_mib * 1.25
    assert _mem_mib(r["requests"]["memory"]) <= _mem_mib(r["limits"]["memory"])
    assert _cpu(r["requests"]["cpu"]) <= _cpu(r["limits"]["cpu"])
    if name == "base":
        assert r["requests"] == {"cpu": "1", "memory": "384Mi"}
        assert r["limits"] == {"cpu": "2", "memory": "768Mi"}


def test_prometheus_annotations(rendered) -> None:
    _, by_kind = rendered
    ann = by_kind["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true"
    assert ann["prometheus.io/port"] == "8000"
    assert ann["prometheus.io/path"] == "/metrics"


def test_selectors_match_pod_labels(rendered) -> None:
    _, by_kind = rendered
    labels = by_kind["Deployment"]["spec"]["template"]["metadata"]["labels"]

    def selects(sel: dict) -> bool:
        return all(labels.get(k) == v for k, v in sel.items())

    assert selects(by_kind["Deployment"]["spec"]["selector"]["matchLabels"])
    assert selects(by_kind["Service"]["spec"]["selector"])
    assert selects(by_kind["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"])
    assert selects(by_kind["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"])
    svc_port = by_kind["Service"]["spec"]["ports"][0]
    assert svc_port["targetPort"] in ("http", 8000)


def test_hpa_and_pdb(rendered) -> None:
    _, by_kind = rendered
    hpa = by_kind["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == by_kind["Deployment"]["metadata"]["name"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    # The HPA owns the replica count.
    assert "replicas" not in by_kind["Deployment"]["spec"]
    assert by_kind["PodDisruptionBudget"]["apiVersion"] == "policy/v1"


def test_network_policy_allows_only_the_http_port(rendered) -> None:
    _, by_kind = rendered
    np_ = by_kind["NetworkPolicy"]["spec"]
    assert np_["policyTypes"] == ["Ingress"]
    ports = [p for rule in np_["ingress"] for p in rule["ports"]]
    assert ports == [{"port": 8000, "protocol": "TCP"}]


def test_production_overlay_is_bigger() -> None:
    base = {d["kind"]: d for d in _render(BASE)}
    prod = {d["kind"]: d for d in _render(PROD)}
    bh, ph = base["HorizontalPodAutoscaler"]["spec"], prod["HorizontalPodAutoscaler"]["spec"]
    assert ph["minReplicas"] > bh["minReplicas"]
    assert ph["maxReplicas"] > bh["maxReplicas"]
    bl = _container(base)["resources"]["limits"]
    pl = _container(prod)["resources"]["limits"]
    assert _mem_mib(pl["memory"]) > _mem_mib(bl["memory"])
    assert _cpu(pl["cpu"]) > _cpu(bl["cpu"])
    spread = prod["Deployment"]["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {t["topologyKey"] for t in spread} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }
    labels = prod["Deployment"]["spec"]["template"]["metadata"]["labels"]
    for t in spread:
        assert all(labels.get(k) == v for k, v in t["labelSelector"]["matchLabels"].items())
    # The overlay must not change the selector (immutable on a live Deployment).
    assert prod["Deployment"]["spec"]["selector"] == base["Deployment"]["spec"]["selector"]


# ----------------------------------------------------------------- compose, Dockerfile


def test_compose_file() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    svc = compose["services"]["weightinit"]
    assert svc["build"]["dockerfile"] == "Dockerfile"
    assert svc["read_only"] is True
    assert "/healthz" in " ".join(svc["healthcheck"]["test"])
    assert svc["stop_signal"] == "SIGTERM"
    prom = compose["services"]["prometheus"]
    mounted = [v.split(":")[0] for v in prom["volumes"]]
    assert "./deploy/prometheus/prometheus.yml" in mounted
    assert (ROOT / "deploy" / "prometheus" / "prometheus.yml").is_file()


def test_prometheus_scrapes_the_compose_service() -> None:
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = [
        t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    ]
    assert "weightinit:8000" in targets
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in prom["scrape_configs"])


def test_dockerfile_essentials() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE=python:3\.11\.\d+-slim-bookworm$", text, re.M)
    assert text.count("FROM ${BASE}") == 2  # multi-stage, same base in both
    assert re.search(r"^USER 10001", text, re.M)
    assert re.search(r"^EXPOSE 8000$", text, re.M)
    assert re.search(r"^STOPSIGNAL SIGTERM$", text, re.M)
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert '"--require-hashes"' in text or "--require-hashes" in text
    assert "--no-deps" in text
    assert 'ENTRYPOINT ["weightinit"]' in text
    assert 'CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]' in text
    runtime = text.split("AS runtime", 1)[1]
    for tool in ("gcc", "build-essential", "apt-get install"):
        assert tool not in runtime


def test_lock_files_are_pinned_and_hashed() -> None:
    for name in ("requirements.lock", "requirements-build.lock"):
        text = (ROOT / name).read_text().replace("\\\n", " ")
        reqs = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        reqs = [r for r in reqs if not r.lstrip().startswith("#")]
        assert reqs
        for r in reqs:
            assert re.match(r"^[A-Za-z0-9_.\-]+==\S+ .*--hash=sha256:[0-9a-f]{64}", r), r
    runtime = (ROOT / "requirements.lock").read_text().lower()
    assert re.search(r"^numba==", runtime, re.M)
    for banned in ("torch", "keras", "tensorflow"):
        assert not re.search(rf"^{banned}==", runtime, re.M)


def test_wheel_packages_every_python_package() -> None:
    """The image installs the project's wheel (not an editable install), so every
    package under weightinit/, core/ and service/ must be in it under the one
    ``weightinit`` namespace: a listed ``packages = [...]`` does not include subpackages
    such as core.layers (tests/test_packaging.py checks the built wheel itself)."""
    setuptools_cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping: dict[str, str] = setuptools_cfg["package-dir"]
    found = sorted(
        ".".join((name, *p.parent.relative_to(ROOT / folder).parts))
        for name, folder in mapping.items()
        for p in (ROOT / folder).rglob("__init__.py")
        if "__pycache__" not in p.parts
    )
    missing = [name for name in found if name not in setuptools_cfg["packages"]]
    assert not missing, f"pyproject.toml leaves {missing} out of the wheel"


def test_dockerignore_keeps_the_context_small() -> None:
    text = (ROOT / ".dockerignore").read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "*"  # allow-list: ignore everything, then re-include
    for needed in ("!pyproject.toml", "!weightinit/", "!core/", "!service/", "!requirements.lock"):
        assert needed in lines


# ----------------------------------------------------------------- the [hf] image variant


def _locked(name: str) -> dict[str, str]:
    """{package: version} of a lock file, every entry checked pinned and hashed."""
    text = (ROOT / name).read_text().replace("\\\n", " ")
    reqs = [ln.strip() for ln in text.splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")]
    pins = {}
    for r in reqs:
        match = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+) .*--hash=sha256:[0-9a-f]{64}", r)
        assert match, f"{name}: unpinned or unhashed: {r[:80]}"
        pins[match[1].lower()] = match[2]
    return pins


def test_hf_variant_installs_a_local_cpu_torch_and_a_hashed_lock() -> None:
    """EXTRAS=hf (the image with the [hf] extra) can only be built with a CPU torch wheel
    at hand, so CI checks its path here whether or not it builds it: the build argument
    defaults to the slim image, the branch installs the wheel from the bind-mounted
    deploy/wheels without dependencies and everything else from requirements-hf.lock,
    which the build context includes."""
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r'^ARG EXTRAS=""$', text, re.M)
    builder = text.split("AS runtime", 1)[0]
    assert re.search(r"^COPY requirements\.lock requirements-build\.lock requirements-hf\.lock",
                     builder, re.M)
    assert "--mount=type=bind,source=deploy/wheels,target=/local-wheels" in builder
    hf_branch = builder.split("hf) ", 1)[1].split(";;", 1)[0]
    assert "/local-wheels/torch-*+cpu-*.whl" in hf_branch
    assert 'pip install --no-deps --no-index "$1"' in hf_branch
    assert "--require-hashes --only-binary=:all: -r requirements-hf.lock" in hf_branch
    assert '"") echo "slim image' in builder  # the default installs nothing more
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "!requirements-hf.lock" in ignored and "!deploy/wheels/" in ignored
    assert (ROOT / "deploy" / "wheels" / "README.md").is_file()  # the mount source exists
    assert "deploy/wheels/*.whl" in (ROOT / ".gitignore").read_text().splitlines()


def test_hf_lock_is_the_extra_without_torch_and_agrees_with_the_runtime_lock() -> None:
    hf = _locked("requirements-hf.lock")
    runtime = _locked("requirements.lock")
    assert "transformers" in hf
    assert not [name for name in hf if name.startswith(("torch", "nvidia", "triton"))]
    # torch's own dependencies (its CPU wheel installs with --no-deps).
    for needed in ("filelock", "typing-extensions", "sympy", "networkx", "jinja2", "fsspec"):
        assert needed in hf, needed
    differing = {name: (runtime[name], hf[name]) for name in hf.keys() & runtime.keys()
                 if hf[name] != runtime[name]}
    assert not differing, f"requirements-hf.lock and requirements.lock disagree: {differing}"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    if "hf" in extras:  # the lock is that extra, torch aside
        wanted = {re.split(r"[<>=!~\[ ;]", r)[0].lower() for r in extras["hf"]}
        assert wanted - {"torch"} <= hf.keys(), wanted - hf.keys()
