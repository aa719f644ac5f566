#!/usr/bin/env bash
# Renders every kustomization under deployments/k8s (base and overlays) and
# validates the result offline: built-in kinds strictly against the Kubernetes
# OpenAPI schemas (PyPI kubernetes-validate), KEDA's ScaledObject against the
# openAPIV3Schema of KEDA's own CRD (Go module github.com/kedacore/keda/v2).
# Network: package registries only (PyPI, the Go module proxy), once; later
# runs use the cache.
#
# Usage: deployments/k8s/validate.sh [OUTDIR]   (rendered YAML goes to OUTDIR)
#
# Tools: `kubectl kustomize` when kubectl is installed, else kustomize from the
# Go module proxy (go run). The Python tools go into a virtualenv at
# $TAILLIGHT_K8S_VENV (default .cache/k8s-validate at the repo root).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
say() { printf 'k8s-validate: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}

# Pinned versions: bump deliberately.
KUBERNETES_VALIDATE_VERSION=1.37.0
KEDA_VERSION=v2.21.0
KUSTOMIZE_VERSION=v5.8.3
K8S_VERSION="${TAILLIGHT_K8S_VERSION:-1.34.0}"

out="${1:-$(mktemp -d)}"
mkdir -p "$out"
venv="${TAILLIGHT_K8S_VENV:-$repo/.cache/k8s-validate}"

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import kubernetes_validate, sys; sys.exit(kubernetes_validate.version.__version__ != '$KUBERNETES_VALIDATE_VERSION')" 2>/dev/null; then
	command -v python3 >/dev/null || die "python3 not found (Debian: apt-get install -y python3 python3-venv)"
	say "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $venv (PyPI)"
	python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install -y python3-venv)"
	"$venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" || die "pip install kubernetes-validate failed"
fi

command -v go >/dev/null || die "go not found"
keda_dir="$(cd "$out" && GOFLAGS=-mod=mod go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
crd="$keda_dir/config/crd/bases/keda.sh_scaledobjects.yaml"
[[ -f "$crd" ]] || die "KEDA $KEDA_VERSION: no $crd (go mod download github.com/kedacore/keda/v2@$KEDA_VERSION)"

render() {
	if command -v kubectl >/dev/null; then
		kubectl kustomize "$1"
	else
		(cd "$repo" && go run "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" build "$1")
	fi
}

files=()
while IFS= read -r k; do
	dir="$(dirname "$k")"
	rel="${dir#"$here"/}"
	f="$out/$(printf '%s' "$rel" | tr / _).yaml"
	render "$dir" >"$f" || die "kustomize build $rel failed"
	say "rendered $rel -> $f"
	files+=("$f")
done < <(find "$here" -name kustomization.yaml | sort)
[[ ${#files[@]} -gt 0 ]] || die "no kustomization.yaml under $here"

"$venv/bin/python" "$here/validate.py" -k "$K8S_VERSION" --crd "$crd" "${files[@]}"
