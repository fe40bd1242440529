#!/usr/bin/env bash
# The GPU checks of issue #17, as one prepared script for a lent GPU machine
# (its own python3 with jax/flax/optax/orbax; ml-collections, tokenizers,
# safetensors, scikit-learn etc. carried as wheels in .whl/, see the device
# tool's README). Not run by CI. Writes everything to ${OUT:-/tmp/gpu_check}.
#
#   K-means protocol, 400 EmbedLLM-size trials once compiled (goal 0.5 s)
#   the whole default protocol at EmbedLLM size (goal 10 s, compile < 60 s)
#   encoder parity on the GPU (default matmul precision may be TF32) and
#   its tokens/s
#
# Budget: about 8 minutes of device time; the reference side runs on the
# host's CPU cores with the fewest trials that still give a ratio.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
python3 -c 'import jax; print(jax.__version__, jax.devices())' | tee "$OUT/devices.txt"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee -a "$OUT/devices.txt"
# 1. K-means protocol: 400 trials at both shapes (reference: 2 trials).
timeout 200 python3 benchmarks/sweep_bench.py --shapes embedllm --trials 400 \
  --ref-trials 2 --json "$OUT/sweep_embedllm.json" 2>&1 | tee "$OUT/sweep.log"
# 2. The whole default protocol (LearnedMap, oracles, K selection).
timeout 200 python3 benchmarks/protocol_bench.py --shapes embedllm \
  --trials 400 --ref-trials 1 --tuned --no-alone \
  --json "$OUT/protocol_embedllm.json" 2>&1 | tee "$OUT/protocol.log"
# 3. Encoder: parity with the bundled sentence-transformers fixtures, then
#    tokens/s (the first, compiling pass is not timed).
timeout 60 python3 -m pytest -q tests/encoder 2>&1 | tee "$OUT/encoder_parity.log"
timeout 60 python3 benchmarks/encoder_bench.py --repeats 3 2>&1 | tee "$OUT/encoder_bench.log"
