#!/usr/bin/env bash
# One prepared GPU session (about 12 minutes on an H100): the GPU-only tests, then the timings
# that need a GPU, each printed as a table. Run from the repository root in an environment
# with the package installed:  bash benchmarks/gpu_check.sh [output folder]
set -uo pipefail
out=${1:-benchmarks/gpu_results}
mkdir -p "$out"
python - <<'PY' | tee "$out/device.txt"
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0))
PY
echo "== GPU-only tests"
timeout 300 python -m pytest --run-gpu -m gpu -q 2>&1 | tail -15 | tee "$out/gpu_tests.txt"
echo "== training numerics per architecture: fp32 vs fp32 channels-last vs bf16 vs bf16 channels-last (steps/s, % of peak)"
echo "   (fills selectivity.numerics.CHANNELS_LAST for cuda: training rows)"
timeout 400 python benchmarks/training_throughput.py --device cuda --rounds 7 --steps 100 \
    --csv "$out/training_numerics.csv" 2>&1 | tail -8 | tee "$out/training_numerics.txt"
echo "== analysis forward passes per architecture, same four numerics (images/s, % of peak; analysis rows)"
timeout 300 python benchmarks/forward_throughput.py --device cuda --rounds 7 --batch-size 500 \
    2>&1 | tail -8 | tee "$out/forward_numerics.txt"
echo "== training throughput: naive port vs fast path vs grouped (network-steps/s, ratio to naive)"
timeout 400 python benchmarks/training_throughput.py --paths --device cuda --steps 300 --group-sizes 1,4,16,32,64 --graphs \
    --csv "$out/training_throughput.csv" 2>&1 | tail -20 | tee "$out/training_throughput.txt"
echo "== stacking K networks: hand-built grouped cnn7 vs vmap over the plain model (network-steps/s)"
timeout 300 python benchmarks/grouped_mechanisms.py --device cuda --steps 100 --group-sizes 4,16,32 \
    2>&1 | tail -16 | tee "$out/grouped_mechanisms.txt"
echo "== ablation sweep of one cnn7 on 10,000 images: upstream-once vs naive"
timeout 300 python benchmarks/ablation_sweep.py --device cuda --images 10000 2>&1 | tail -12 | tee "$out/ablation_sweep.txt"
echo "== tuning: one cnn7 checkpoint, and VGG16 (random weights) with the full 57-SF 224-px set"
timeout 300 python - <<'PY' 2>&1 | tee "$out/tuning.txt"
import time, torch
from selectivity.networks.loaded import LoadedNetwork
from selectivity.networks.models import build_model
from selectivity.tuning.analysis import TuningSettings, analyse_tuning
from selectivity.networks.published import load_vgg16

cnn = build_model("cnn7").cuda().eval()
network = LoadedNetwork(cnn, torch.zeros(3, 32, 32, device="cuda"), 0, {})
ids = {"model": "cnn7", "dataset": "none", "label_corruption": 0.0, "seed": 0, "checkpoint": "epoch", "epoch": 0}
analyse_tuning(network, TuningSettings(), ids)  # warm-up
torch.cuda.synchronize(); start = time.perf_counter()
analyse_tuning(network, TuningSettings(), ids)
torch.cuda.synchronize(); print(f"cnn7 tuning, one checkpoint: {time.perf_counter() - start:.3f} s")
vgg = load_vgg16("random", "cuda")
start = time.perf_counter()
result = analyse_tuning(vgg, TuningSettings(batch_size=128), dict(ids, model="vgg16_imagenet", checkpoint="published"))
torch.cuda.synchronize()
print(f"VGG16 tuning, 20 layers, 2736 gratings + 432 colour gratings at 224 px: {time.perf_counter() - start:.1f} s, {len(result.table)} rows")
PY
echo "== tuning of one cnn7 checkpoint: orientation only vs all four low-level features"
timeout 120 python benchmarks/tuning_features.py --device cuda --repeats 5 2>&1 | tail -8 | tee "$out/tuning_features.txt"
