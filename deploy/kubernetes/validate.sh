#!/usr/bin/env bash
# Renders every kustomization under deploy/kubernetes with Debian's kubectl and validates
# the output offline: against the Kubernetes OpenAPI schemas (kubernetes-validate --strict,
# from PyPI, schemas bundled in the package) and against our own rules (check_rendered.py).
#
# Installs what it needs, from Debian's archive and PyPI only, into target/deploy-tools:
#   * Debian's kubectl (package kubernetes-client), unpacked there rather than installed,
#     so it never clashes with another kubectl on the machine;
#   * a Python venv with kubernetes-validate.
# If another kubectl is on PATH (or KUBECTL=/path is given) the manifests are rendered and
# checked with it as well: the files must work with old and new kustomize alike.
#
#   deploy/kubernetes/validate.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
tools="$root/target/deploy-tools"
out="$tools/rendered"
validate_version="1.37.0"       # kubernetes-validate release (bundles schemas up to 1.37)
k8s_versions=("1.33.0" "1.37.0") # oldest we support (k8s-openapi 'earliest') and newest
step() { printf '==> %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

mkdir -p "$tools" "$out"

debian_kubectl="$tools/debian/usr/bin/kubectl"
if [ ! -x "$debian_kubectl" ]; then
  step "Debian's kubectl (kubernetes-client), unpacked into $tools/debian"
  rm -f "$tools"/kubernetes-client_*.deb
  download() { (cd "$tools" && apt-get download -qq kubernetes-client 2>/dev/null); }
  if ! download; then
    as_root apt-get update -qq
    download
  fi
  dpkg-deb -x "$tools"/kubernetes-client_*.deb "$tools/debian"
fi

venv="$tools/venv"
if ! "$venv/bin/kubernetes-validate" --version 2>/dev/null | grep -q "$validate_version"; then
  step "kubernetes-validate $validate_version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$validate_version"
fi

kubectls=("$debian_kubectl")
other="${KUBECTL:-$(command -v kubectl || true)}"
[ -n "$other" ] && [ "$other" != "$debian_kubectl" ] && kubectls+=("$other")

rm -f "$out"/*.yaml
rendered=()
for kubectl in "${kubectls[@]}"; do
  version="$("$kubectl" version --client 2>/dev/null | grep -o 'v[0-9][0-9.]*' | head -1)"
  for dir in "$here/base" "$here"/overlays/*/; do
    dir="${dir%/}"
    name="$(basename "$dir")"
    file="$out/$name.kubectl-$version.yaml"
    step "kubectl $version kustomize ${dir#"$root"/}"
    # Deprecation notices from newer kustomize go to stderr; failures still fail.
    "$kubectl" kustomize "$dir" > "$file" 2> "$file.log" || { cat "$file.log" >&2; exit 1; }
    rendered+=("$file")
  done
done

for v in "${k8s_versions[@]}"; do
  step "kubernetes-validate --strict -k $v (${#rendered[@]} files)"
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$v" "${rendered[@]}"
done

step "check_rendered.py"
"$venv/bin/python" "$here/check_rendered.py" "${rendered[@]}"
step "ok: ${#rendered[@]} renders valid"
