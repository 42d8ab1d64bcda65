#!/usr/bin/env bash
# bf16 against fp32 over a real pretraining run: the same run (data, seed, masks, schedule) twice,
# `cae pretrain --precision fp32` then `--precision bf16`, and the two loss curves compared in
# windows of 50 steps. Prints one JSON object (also written to OUT/tracking.json): per window the
# mean loss of each run and their relative difference, and the largest such difference.
#
#   bench/bf16-tracking.sh [--steps 300] [--backend cpu|cuda] [--preset fmnist-tiny] [--batch 64]
#                          [--out DIR] [--cae "./cae"]
# --cae: the command that runs the CLI (split at spaces, e.g. "java -jar cae-cli.jar").
#
# On the CPU bf16 is an emulation (slower than fp32); on CUDA it runs on tensor cores.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
steps=300
backend=cpu
preset=fmnist-tiny
batch=64
out=""
cae="$root/cae"
while [ $# -gt 0 ]; do
    case "$1" in
        --steps) steps=$2; shift 2 ;;
        --backend) backend=$2; shift 2 ;;
        --preset) preset=$2; shift 2 ;;
        --batch) batch=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --cae) cae=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
out=${out:-$root/build/bf16-tracking}
rm -rf "$out/fp32" "$out/bf16"
mkdir -p "$out"

for p in fp32 bf16; do
    echo "== $p: $steps steps of $preset, batch $batch, on $backend" >&2
    start=$(date +%s)
    read -r -a cae_cmd <<< "$cae"
    "${cae_cmd[@]}" pretrain --preset "$preset" --steps "$steps" --batch "$batch" --backend "$backend" --precision "$p" \
        --seed 1 --no-probe --no-report --log-interval 60 --out "$out/$p" >&2
    echo "== $p: $(( $(date +%s) - start )) s" >&2
done

python3 - "$out" "$steps" "$backend" "$preset" "$batch" <<'PY'
import json, os, sys
out, steps, backend, preset, batch = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
def losses(p):
    d = {}
    with open(os.path.join(out, p, "metrics.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r.get("loss") is not None:
                d[r["step"]] = r["loss"]
    return d
a, b = losses("fp32"), losses("bf16")
common = sorted(set(a) & set(b))
windows = []
for start in range(0, steps, 50):
    s = [k for k in common if start < k <= start + 50]
    if not s:
        continue
    ma = sum(a[k] for k in s) / len(s)
    mb = sum(b[k] for k in s) / len(s)
    windows.append({"steps": f"{start + 1}-{start + len(s)}", "fp32": round(ma, 5), "bf16": round(mb, 5),
                    "rel_diff": round(abs(mb - ma) / abs(ma), 5)})
result = {"preset": preset, "backend": backend, "batch": batch, "steps": steps, "logged_steps": len(common),
          "first_loss": {"fp32": a[common[0]], "bf16": b[common[0]]},
          "windows": windows, "max_window_rel_diff": max(w["rel_diff"] for w in windows),
          "last_window_drop": {"fp32": round(1 - windows[-1]["fp32"] / windows[0]["fp32"], 4),
                               "bf16": round(1 - windows[-1]["bf16"] / windows[0]["bf16"], 4)}}
text = json.dumps(result, indent=1)
open(os.path.join(out, "tracking.json"), "w").write(text + "\n")
print(text)
PY
