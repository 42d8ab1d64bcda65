#!/usr/bin/env bash
# Our CPU backend and the PyTorch reference (tests/reference/cae_reference.py) on the same
# model, batch and thread count, alternating runs, with PyTorch at its best
# (OMP_WAIT_POLICY=PASSIVE, OpenBLAS). Prints each run's median step time, the medians over
# rounds, and the ratio PyTorch / ours (> 1: we are faster).
#
#   bench/compare-pytorch-cpu.sh [--preset fmnist-tiny | --config FILE.json] [--batch 64]
#                                [--threads 2] [--steps 10] [--rounds 3]
#
# Needs Debian's python3-torch (run with /usr/bin/python3).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
preset=fmnist-tiny
config=""
batch=64
threads=2
steps=10
rounds=3
while [ $# -gt 0 ]; do
    case "$1" in
        --preset) preset=$2; shift 2 ;;
        --config) config=$2; shift 2 ;;
        --batch) batch=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

if [ -z "$config" ]; then
    config=$(mktemp --suffix=.json)
    trap 'rm -f "$config"' EXIT
    "$root/cae" config "$preset" > "$config"
fi
# Same masked count on both sides: round(N / 2) as ours.
masked=$(/usr/bin/python3 -c "import json,sys; c=json.load(open('$config')); n=(c['img_size']//c['patch_size'])**2; print(int(n/2+0.5))")

echo "model $(cat "$config")"
echo "batch $batch, $threads threads, $masked masked patches, $steps timed steps per run, $rounds rounds"
ours=()
theirs=()
for r in $(seq 1 "$rounds"); do
    o=$("$root/cae" bench --config "$config" --batch "$batch" --steps "$steps" --warmup 2 --threads "$threads" \
        --backend cpu | grep '^{')
    t=$(OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 "$root/tests/reference/cae_reference.py" bench --config "$config" \
        --batch "$batch" --steps "$steps" --warmup 2 --threads "$threads" --masked "$masked" --drop-path | grep '^{')
    om=$(echo "$o" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["step_ms"])')
    tm=$(echo "$t" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["step_ms"])')
    echo "round $r: cae-java $om ms/step, pytorch $tm ms/step"
    ours+=("$om")
    theirs+=("$tm")
done
/usr/bin/python3 - "${ours[*]}" "${theirs[*]}" "$batch" <<'PY'
import statistics, sys
ours = [float(x) for x in sys.argv[1].split()]
theirs = [float(x) for x in sys.argv[2].split()]
b = int(sys.argv[3])
o, t = statistics.median(ours), statistics.median(theirs)
print(f"median: cae-java {o:.1f} ms ({b / o * 1000:.1f} img/s), pytorch {t:.1f} ms ({b / t * 1000:.1f} img/s)")
print(f"ratio pytorch/cae-java: {t / o:.2f}")
PY
