#!/bin/sh
# Makes sure WORKER_MODEL_DIR holds a model before workers start (compose's `model-init`, the
# chart's init container). A mounted model (its model.json present) is used as it is; otherwise
# the project's own demo-model command builds the random-weight demo model there.
set -eu
app="${APP_DIR:-/app}"
dir="${WORKER_MODEL_DIR:?WORKER_MODEL_DIR is not set}"
preset="${DEMO_MODEL_PRESET:-tiny}"
if [ -f "$dir/model.json" ]; then
  echo "model found at $dir"
  exit 0
fi
echo "no model at $dir: building the demo model (preset $preset)"
exec node "$app/dist/src/cli/demo-model.js" --preset "$preset" --out "$dir" --force --quiet
