#!/usr/bin/env bash
# Data-parallel scaling on one machine: the same pretraining (the default fmnist-tiny model,
# batch 64, the embedded Fashion-MNIST) as one process using every core, and as N MPI ranks
# (mpirun -np N, shared memory) splitting the cores and every batch, alternating, REPEATS times
# each. Prints per run the training images/s and the share of the native step spent averaging
# gradients over the ranks (reduce_ms / compute_ms from metrics.jsonl), then the medians and
# their ratio.
#
#   bench/data-parallel.sh [--ranks N] [--steps S] [--repeats R] [--out FILE.jsonl]
#
# CAE_CLI names the command that runs the CLI (default: ./cae). Needs Open MPI's mpirun. Run it
# on an otherwise idle machine: the figures are wall-clock rates.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RANKS=2
STEPS=300
REPEATS=3
OUT="$ROOT/bench/results/data-parallel-$(date +%Y-%m-%d).jsonl"
while [ $# -gt 0 ]; do
    case "$1" in
        --ranks) RANKS=$2; shift 2 ;;
        --steps) STEPS=$2; shift 2 ;;
        --repeats) REPEATS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n 2,13p "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "data-parallel: unknown option $1" >&2; exit 2 ;;
    esac
done
command -v mpirun >/dev/null || { echo "data-parallel: needs mpirun (Debian: openmpi-bin)" >&2; exit 1; }
if [ -z "${CAE_CLI:-}" ]; then
    "$ROOT/cae" build >/dev/null
    CAE_CLI="$ROOT/cae"
fi
read -r -a CLI <<<"$CAE_CLI"
CORES=$(nproc)
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
mkdir -p "$(dirname "$OUT")"
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMPI_MCA_btl=self,vader

one_run() {  # $1 = ranks, $2 = repeat
    local dir="$SCRATCH/r$1-$2"
    local args=(pretrain --steps "$STEPS" --no-probe --no-report --checkpoint-every 0 --out "$dir")
    local start end
    start=$(date +%s.%N)
    if [ "$1" -eq 1 ]; then
        "${CLI[@]}" "${args[@]}" --threads "$CORES" >"$dir.log" 2>&1
    else
        mpirun -np "$1" --oversubscribe --bind-to none "${CLI[@]}" "${args[@]}" >"$dir.log" 2>&1
    fi
    end=$(date +%s.%N)
    python3 - "$dir" "$1" "$2" "$STEPS" "$CORES" "$start" "$end" >>"$OUT" <<'PY'
import json, sys
d, ranks, rep, steps, cores, start, end = sys.argv[1:]
rows = [json.loads(l) for l in open(d + "/metrics.jsonl") if '"loss"' in l]
rows = rows[len(rows) // 10:]  # the first tenth warms up
compute = sum(r["compute_ms"] for r in rows)
reduce_ms = sum(r.get("reduce_ms", 0.0) for r in rows)
seconds = rows[-1]["elapsed_s"] - rows[0]["elapsed_s"]
print(json.dumps({"ranks": int(ranks), "repeat": int(rep), "steps": int(steps), "cores": int(cores),
                  "threads_per_rank": max(1, int(cores) // int(ranks)), "batch": 64,
                  "images_per_s": 64 * (len(rows) - 1) / seconds, "reduce_share": reduce_ms / compute,
                  "reduce_ms_per_step": reduce_ms / len(rows), "wall_s": float(end) - float(start),
                  "final_loss": rows[-1]["loss"]}))
PY
    tail -1 "$OUT" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("ranks %d, repeat %d: %.0f images/s, reduction %.1f%% of the step (%.2f ms), final loss %.4f" % (r["ranks"], r["repeat"], r["images_per_s"], 100*r["reduce_share"], r["reduce_ms_per_step"], r["final_loss"]))'
}

first=0
[ -f "$OUT" ] && first=$(wc -l <"$OUT")
for rep in $(seq 1 "$REPEATS"); do
    one_run 1 "$rep"
    one_run "$RANKS" "$rep"
done
tail -n +"$((first + 1))" "$OUT" | python3 -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin]
by = {}
for r in rows:
    by.setdefault(r["ranks"], []).append(r["images_per_s"])
one = statistics.median(by[1])
for k in sorted(by):
    m = statistics.median(by[k])
    print("ranks %d: median %.0f images/s over %d runs, %.2fx one process" % (k, m, len(by[k]), m / one))
'
