#!/usr/bin/env bash
# Regenerates the ONNX parity fixtures, or the README's ONNX demo model
# (README.md in this folder):
#
#   internal/tools/onnxfixtures/run.sh OUT_DIR          (make onnx-fixtures)
#   internal/tools/onnxfixtures/run.sh --demo OUT_DIR   (make onnx-demo)
#
# The fixtures: OUT_DIR/NAME.onnx (make_models.py, Debian's /usr/bin/python3
# with python3-onnx and numpy) and OUT_DIR/NAME.json (ort_outputs.js: the
# inputs and ONNX Runtime's outputs, onnxruntime-node in $PEERS_WORK/node)
# for each model. The demo (--demo): from OUT_DIR/features.yaml and the demo
# store testdata/store, OUT_DIR/stats.yaml and ctr-pytorch.onnx (make_demo.py,
# which trains it; python3-yaml too) and ctr-pytorch.expected.json
# (demo_outputs.js: ONNX Runtime's scores and AUCs). Deterministic: a second
# run writes the same bytes.
#
# Installs the peers (${SCORER_PEERS:-../shared/peers}/install.sh, apt-get
# and npm) only if onnx, numpy or onnxruntime-node $ORT_NODE_VERSION (default
# 1.30.0, the version of the committed outputs) is missing.
#
# Environment: SCORER_PEERS (the peers folder, default ../shared/peers from
# the project root), PEERS_WORK (install cache, default ~/.cache/ctr-peers),
# ORT_NODE_VERSION.
set -euo pipefail

demo=
if [[ ${1:-} == --demo ]]; then
  demo=1
  shift
fi
if [[ $# -ne 1 ]]; then
  echo "usage: $0 [--demo] OUT_DIR" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=$1
peers=${SCORER_PEERS:-$root/../shared/peers}
export PEERS_WORK=${PEERS_WORK:-$HOME/.cache/ctr-peers}
ort_version=${ORT_NODE_VERSION:-1.30.0}
py=/usr/bin/python3 # Debian's python, with the packages install.sh installs

have_ort() {
  node -e 'const p = require(process.argv[1] + "/package.json");
           if (p.version !== process.argv[2]) process.exit(1);
           require(process.argv[1])' "$PEERS_WORK/node/node_modules/onnxruntime-node" "$ort_version" 2>/dev/null
}
if ! "$py" -c 'import onnx, numpy' 2>/dev/null || ! have_ort; then
  if [[ ! -x $peers/install.sh ]]; then
    echo "run.sh: onnx/numpy or onnxruntime-node $ort_version missing and no $peers/install.sh (set SCORER_PEERS)" >&2
    exit 1
  fi
  echo "run.sh: installing the peers ($peers/install.sh)" >&2
  ORT_NODE_VERSION=$ort_version "$peers/install.sh"
fi

mkdir -p "$out"
spec=$(mktemp -d)
trap 'rm -rf "$spec"' EXIT
if [[ -n $demo ]]; then
  # python3-yaml reads the feature spec; the peers' install.sh does not
  # install it (Debian's python3 usually has it).
  if ! "$py" -c 'import yaml' 2>/dev/null; then
    echo "run.sh: $py has no yaml module: apt-get install python3-yaml" >&2
    exit 1
  fi
  PYTHONDONTWRITEBYTECODE=1 "$py" "$here/make_demo.py" "$root/testdata/store" "$out" "$spec"
  node "$here/demo_outputs.js" "$spec" "$out"
  exit 0
fi
PYTHONDONTWRITEBYTECODE=1 "$py" "$here/make_models.py" "$out" "$spec"
node "$here/ort_outputs.js" "$spec" "$out"
