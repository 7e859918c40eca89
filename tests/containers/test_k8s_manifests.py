"""Offline validation of containers/k8s/ and the playfiles.

1. Every document is validated by npm's kubernetes-models (the OpenAPI
   schema of Kubernetes: types, required fields, enums) and every key is
   checked against the Kubernetes type at its place (the schema alone lets a
   misspelled key through): tests/containers/k8s_validate/validate.cjs, with
   the exact package versions of its package-lock.json installed by `npm ci`
   into a temporary directory (nothing is written to the repository).
2. The things no schema knows are checked here by hand: 3 replicas, probe
   paths and ports, names that must match across documents (Secret,
   ConfigMap, Services, selectors, kustomization), the grace period against
   tally's shutdown timeout, non-root users matching the images.
"""

import json
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from podman_helpers import REPO, apt_install, run

K8S = REPO / "containers" / "k8s"
VALIDATOR = Path(__file__).resolve().parent / "k8s_validate"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
PLAYFILES = [REPO / "playfile.yaml", REPO / "containers" / "playfile-scale.yaml",
             REPO / "containers" / "playfile-postgres.yaml"]


@pytest.fixture(scope="session")
def validator(tmp_path_factory):
    """node + the pinned npm packages in a temporary directory."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        apt_install("nodejs", "npm")
    d = tmp_path_factory.mktemp("k8s_validate")
    for name in ("package.json", "package-lock.json", "validate.cjs"):
        shutil.copy(VALIDATOR / name, d / name)
    run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=d, timeout=600)

    def validate(*files):
        p = run(["node", str(d / "validate.cjs"), *map(str, files)], timeout=120)
        return json.loads(p.stdout)

    return validate


@pytest.fixture(scope="session")
def docs(validator):
    """Every document of containers/k8s (kustomization.yaml aside)."""
    return validator(*MANIFESTS)


def one(docs, kind, name=None):
    found = [d["object"] for d in docs if d["kind"] == kind and (name is None or d["name"] == name)]
    assert len(found) == 1, "expected one %s %s, found %d" % (kind, name or "", len(found))
    return found[0]


def seconds(duration):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", duration)
    assert m, duration
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "ms" else v * 60 if m.group(2) == "m" else v


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def test_validator_catches_what_it_should(validator, tmp_path):
    """The checker itself: a wrong type and a misspelled key are reported."""
    bad = tmp_path / "bad.yaml"
    text = (K8S / "tally.yaml").read_text()
    bad.write_text(text.replace("replicas: 3", 'replicas: "3"', 1)
                   .replace("readinessProbe:", "readinesProbe:", 1))
    errors = [e for d in validator(bad) for e in d["errors"]]
    assert any("/spec/replicas must be integer" in e for e in errors), errors
    assert any("readinesProbe: unknown field" in e for e in errors), errors


def test_every_document_is_valid(docs, validator):
    results = docs + validator(*PLAYFILES)
    bad = {"%s[%d] %s/%s" % (Path(d["file"]).name, d["index"], d["kind"], d["name"]): d["errors"]
           for d in results if d["errors"]}
    assert not bad, json.dumps(bad, indent=1)
    kinds = sorted((d["kind"], d["name"]) for d in docs)
    assert kinds == sorted([
        ("ConfigMap", "tally-config"), ("Deployment", "tally"), ("Service", "tally"),
        ("PodDisruptionBudget", "tally"), ("Secret", "tally-admin"), ("StatefulSet", "redis"),
        ("Service", "redis"), ("NetworkPolicy", "redis"),
    ]), kinds


def test_tally_deployment(docs):
    dep = one(docs, "Deployment", "tally")
    cm = one(docs, "ConfigMap")
    secret = one(docs, "Secret")
    spec = dep["spec"]
    assert spec["replicas"] == 3
    labels = spec["template"]["metadata"]["labels"]
    assert matches(spec["selector"]["matchLabels"], labels)
    pod = spec["template"]["spec"]
    [c] = pod["containers"]
    assert c["image"] == "localhost/tally:latest"

    # Probes: liveness /healthz, readiness /readyz, on the port tally listens on.
    port = int(cm["data"].get("TALLY_PORT", "8080"))
    named = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = c[probe]["httpGet"]
        assert get["path"] == path, (probe, get)
        assert named.get(get["port"], get["port"]) == port, (probe, get, named)

    # Configuration from the ConfigMap, the token from the Secret.
    assert [e["configMapRef"]["name"] for e in c["envFrom"]] == [cm["metadata"]["name"]]
    env = {e["name"]: e for e in c.get("env", [])}
    ref = env["TALLY_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == secret["metadata"]["name"]
    assert ref["key"] in {**secret.get("stringData", {}), **secret.get("data", {})}
    assert not ref.get("optional", False)
    # Nothing configured but through the environment; no value of tally's
    # inline in the pod spec but the secret reference.
    assert "args" not in c and "command" not in c
    assert set(env) == {"TALLY_ADMIN_TOKEN"}

    # Resources: requests and limits for CPU and memory.
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][part]), c["resources"]

    # The grace period covers the preStop pause and tally's shutdown timeout.
    grace = pod["terminationGracePeriodSeconds"]
    pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    shutdown = seconds(cm["data"].get("TALLY_SHUTDOWN_TIMEOUT", "10s"))
    assert grace > pre_stop + shutdown, (grace, pre_stop, shutdown)

    # Non-root, as the image's USER 10001:10001.
    sc = pod["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001 and sc["runAsGroup"] == 10001
    assert c["securityContext"]["allowPrivilegeEscalation"] is False

    # The Service and the PodDisruptionBudget select these pods.
    svc = one(docs, "Service", "tally")
    assert matches(svc["spec"]["selector"], labels)
    assert all(p["targetPort"] in named or p["targetPort"] == port for p in svc["spec"]["ports"])
    pdb = one(docs, "PodDisruptionBudget", "tally")
    assert matches(pdb["spec"]["selector"]["matchLabels"], labels)
    assert pdb["spec"]["minAvailable"] < spec["replicas"]


def test_redis_statefulset(docs):
    cm = one(docs, "ConfigMap")
    sts = one(docs, "StatefulSet", "redis")
    svc = one(docs, "Service", "redis")
    assert cm["data"]["TALLY_BACKEND"] == "redis"
    url = urlsplit(cm["data"]["REDIS_URL"])
    assert url.scheme == "redis"
    assert url.hostname == svc["metadata"]["name"]
    assert url.port in [p["port"] for p in svc["spec"]["ports"]]
    assert sts["spec"]["serviceName"] == svc["metadata"]["name"]
    assert sts["spec"]["replicas"] == 1
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert matches(sts["spec"]["selector"]["matchLabels"], labels)
    assert matches(svc["spec"]["selector"], labels)
    pod = sts["spec"]["template"]["spec"]
    [c] = pod["containers"]
    assert c["image"] == "localhost/tally-redis:latest"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 999
    # The counter persists: an fsynced append-only file on the claimed volume.
    args = c["args"]
    opt = {args[i]: args[i + 1] for i in range(0, len(args) - 1, 2)}
    assert opt["--appendonly"] == "yes" and opt["--appendfsync"] == "always"
    [claim] = sts["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == opt["--dir"]
    # Only tally's pods may reach it.
    np = one(docs, "NetworkPolicy", "redis")
    assert matches(np["spec"]["podSelector"]["matchLabels"], labels)
    tally_labels = one(docs, "Deployment", "tally")["spec"]["template"]["metadata"]["labels"]
    [rule] = np["spec"]["ingress"]
    assert [matches(f["podSelector"]["matchLabels"], tally_labels) for f in rule["from"]] == [True]


def test_kustomization(validator, docs):
    [k] = validator(K8S / "kustomization.yaml")
    obj = k["object"]
    assert obj["kind"] == "Kustomization"
    listed = obj["resources"]
    assert all((K8S / f).is_file() for f in listed), listed
    # Everything but the example Secret (never applied with a known token).
    assert sorted(listed) == sorted(p.name for p in MANIFESTS if p.name != "secret.example.yaml")
    used = {c["image"].rsplit(":", 1)[0] for d in docs if d["kind"] in ("Deployment", "StatefulSet")
            for c in d["object"]["spec"]["template"]["spec"]["containers"]}
    assert {i["name"] for i in obj["images"]} == used


def test_playfiles(validator):
    pods = {Path(d["file"]).name: d["object"] for d in validator(*PLAYFILES)}
    for name, pod in pods.items():
        assert pod["kind"] == "Pod"
        spec = pod["spec"]
        assert spec["hostNetwork"] is True, name
        tally = [c for c in spec["containers"] if c["name"] == "tally"]
        assert len(tally) == 1, name
        env = {e["name"]: e["value"] for e in tally[0]["env"]}
        assert env["TALLY_HOST"] == "127.0.0.1", name
        probe = tally[0]["livenessProbe"]["exec"]["command"]
        assert probe == ["/usr/local/bin/tally-healthcheck", env["PORT"], "/healthz"], (name, probe)
        for c in spec["containers"]:
            assert c["image"].startswith("localhost/tally") and c["imagePullPolicy"] == "Never"
    assert {p["metadata"]["name"] for p in pods.values()} == {"tally", "tally2", "tally-postgres"}
