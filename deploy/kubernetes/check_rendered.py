"""Rules the schemas cannot express, checked on rendered manifests (see validate.sh).

Usage: python check_rendered.py RENDERED.yaml...   (exit 1 and one line per violation)
"""

import sys

import yaml

LEASE_VERBS = {"get", "list", "watch", "create", "update", "patch"}
EGRESS_PORTS = {57400, 443, 6443, 53}
HTTP_PORT = 9610
PASSWORD_FILE = "/etc/opergroupd/secret/password"
CONFIG_FILE = "/etc/opergroupd/config.yaml"


def check(path, docs):
    errors = []

    def fail(obj, message):
        meta = obj.get("metadata", {}) if obj else {}
        where = f"{obj.get('kind')}/{meta.get('name')}" if obj else "-"
        errors.append(f"{path}: {where}: {message}")

    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc.get("kind"), []).append(doc)
    deployments = by_kind.get("Deployment", [])
    if len(deployments) != 1:
        fail(None, f"expected one Deployment, found {len(deployments)}")
        return errors
    deploy = deployments[0]
    ns = deploy["metadata"].get("namespace")
    for doc in docs:
        if doc["kind"] != "Namespace" and doc["metadata"].get("namespace") != ns:
            fail(doc, f"namespace {doc['metadata'].get('namespace')!r}, not the Deployment's {ns!r}")

    spec = deploy["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    if spec.get("replicas") != 2:
        fail(deploy, f"replicas {spec.get('replicas')}, want 2")
    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True:
        fail(deploy, "pod securityContext.runAsNonRoot must be true")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        fail(deploy, "pod seccompProfile must be RuntimeDefault")
    for c in pod["containers"]:
        sc = c.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True:
            fail(deploy, f"container {c['name']}: readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            fail(deploy, f"container {c['name']}: allowPrivilegeEscalation must be false")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            fail(deploy, f"container {c['name']}: capabilities.drop must be [ALL]")
        res = c.get("resources", {})
        if not res.get("requests") or not res.get("limits"):
            fail(deploy, f"container {c['name']}: resources.requests and limits are required")
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        if ports.get("http") != HTTP_PORT:
            fail(deploy, f"container {c['name']}: port 'http' must be {HTTP_PORT}")
        for probe, want in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            got = c.get(probe, {}).get("httpGet", {}).get("path")
            if got != want:
                fail(deploy, f"container {c['name']}: {probe} path {got!r}, want {want!r}")

    # Every ConfigMap/Secret the pod mounts is in the render; find config and password paths.
    names = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    mounted = {}
    mounts = {m["name"]: m["mountPath"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
    for vol in pod.get("volumes", []):
        sources = vol.get("projected", {}).get("sources", [])
        sources += [{k: vol[k]} for k in ("configMap", "secret") if k in vol]
        for src in sources:
            for kind, key in (("ConfigMap", "configMap"), ("Secret", "secret")):
                if key not in src:
                    continue
                ref = src[key].get("name") or src[key].get("secretName")
                obj = names.get((kind, ref))
                if obj is None:
                    fail(deploy, f"mounts {kind} {ref!r}, which the render does not contain")
                    continue
                for item in src[key].get("items", []):
                    if item["key"] not in (obj.get("data") or {}):
                        fail(deploy, f"{kind} {ref!r} has no key {item['key']!r}")
                    mounted[f"{mounts.get(vol['name'], '?')}/{item['path']}"] = (kind, ref, item["key"])

    config_src = mounted.get(CONFIG_FILE)
    if not config_src:
        fail(deploy, f"nothing mounted at {CONFIG_FILE}")
    else:
        cm = names[config_src[:2]]
        config = yaml.safe_load(cm["data"][config_src[2]])
        le = config.get("leader-election") or {}
        if not le.get("lease"):
            fail(cm, "config.yaml: leader-election.lease is required for two replicas")
        if le.get("namespace") != ns:
            fail(cm, f"config.yaml: leader-election.namespace {le.get('namespace')!r}, "
                     f"but the pods run in {ns!r} (the Role grants only there)")
        if str(config.get("http", "")).rsplit(":", 1)[-1] != str(HTTP_PORT):
            fail(cm, f"config.yaml: http must listen on port {HTTP_PORT} (probes, Service)")
        pw = (config.get("defaults") or {}).get("password-file")
        if pw != PASSWORD_FILE or PASSWORD_FILE not in mounted:
            fail(cm, f"config.yaml: defaults.password-file {pw!r}, want the mounted {PASSWORD_FILE}")

    for role in by_kind.get("Role", []) + by_kind.get("ClusterRole", []):
        for rule in role.get("rules", []):
            if rule.get("apiGroups") != ["coordination.k8s.io"] or rule.get("resources") != ["leases"]:
                fail(role, f"grants more than leases: {rule}")
            extra = set(rule.get("verbs", [])) - LEASE_VERBS
            if extra:
                fail(role, f"verbs beyond {sorted(LEASE_VERBS)}: {sorted(extra)}")

    def selects_pods(obj, selector):
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            fail(obj, f"selector {selector} does not select the pods {labels}")

    for svc in by_kind.get("Service", []):
        selects_pods(svc, svc["spec"].get("selector"))
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        for obj in by_kind.get(kind, []):
            key = "selector" if kind == "PodDisruptionBudget" else "podSelector"
            selects_pods(obj, obj["spec"].get(key, {}).get("matchLabels"))
    for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy", "ServiceAccount", "Role", "RoleBinding"):
        if not by_kind.get(kind):
            fail(None, f"no {kind} in the render")
    for pol in by_kind.get("NetworkPolicy", []):
        if "Egress" not in pol["spec"].get("policyTypes", []):
            fail(pol, "must restrict Egress")
        for rule in pol["spec"].get("egress", []):
            ports = {p.get("port") for p in rule.get("ports", [])}
            if not ports or ports - EGRESS_PORTS:
                fail(pol, f"egress rule allows ports {sorted(map(str, ports)) or 'all'}, "
                          f"want only {sorted(EGRESS_PORTS)}")
    return errors


def main(paths):
    errors = []
    for path in paths:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        errors += check(path, docs)
    for e in errors:
        print(e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
