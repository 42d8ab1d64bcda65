#!/usr/bin/env bash
# Short pretrainings over a grid of recipes, each probed at the end; one JSON line per run.
#
#   bench/quality-sweep.sh GRID [--seeds N] [--first-seed S] [--only NAME[,NAME...]] [--out FILE.jsonl] [--keep DIR]
#
# GRID has one run per line: a name, then `cae pretrain` options, then optionally `|` and a JSON
# object of configuration keys that replace the preset's (official CAE names), for example
#
#   lr1e-3        --preset fmnist-tiny --lr 1e-3 --batch 128 --steps 390
#   depth4        --lr 1e-3 --batch 128 --steps 390 | {"depth": 4, "drop_path_rate": 0}
#
# Blank lines and lines starting with # are skipped. Each run trains into a scratch folder
# (kept under --keep DIR when given) with --no-report, and appends to the output (default
# bench/results/quality-sweep-DATE.jsonl) one line: the name, seed, options, configuration,
# steps, wall seconds, training images/s, the mean losses of the last 10% of steps, the
# k-NN accuracy curve logged during the run, and every probe score (knn_/linear_ of cls_mean,
# cls and mean for the pretrained and random-init encoders; knn/linear of raw pixels). bench/quality-summary.py tabulates it.
# CAE_CLI names the command that runs the CLI (default: ./cae, which builds first when needed;
# for example "java --enable-native-access=ALL-UNNAMED -jar /tmp/cae-cli.jar" to keep a fixed
# build while the sources change).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { sed -n 2,20p "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }

[ $# -ge 1 ] || usage
GRID=$1
shift
SEEDS=1
FIRST_SEED=0
ONLY=
OUT="$ROOT/bench/results/quality-sweep-$(date +%Y-%m-%d).jsonl"
KEEP=
while [ $# -gt 0 ]; do
    case "$1" in
        --seeds) SEEDS=$2; shift 2 ;;
        --first-seed) FIRST_SEED=$2; shift 2 ;;
        --only) ONLY=",$2,"; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --keep) KEEP=$2; shift 2 ;;
        -h|--help) usage ;;
        *) echo "quality-sweep: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -f "$GRID" ] || { echo "quality-sweep: no grid file $GRID" >&2; exit 2; }
[[ "$SEEDS" =~ ^[1-9][0-9]*$ ]] || { echo "quality-sweep: --seeds must be a positive number, not $SEEDS" >&2; exit 2; }
[[ "$FIRST_SEED" =~ ^[0-9]+$ ]] || { echo "quality-sweep: --first-seed must be a number >= 0, not $FIRST_SEED" >&2; exit 2; }
command -v python3 >/dev/null || { echo "quality-sweep: needs python3" >&2; exit 1; }
mkdir -p "$(dirname "$OUT")"
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

if [ -z "${CAE_CLI:-}" ]; then
    "$ROOT/cae" build >/dev/null
    CAE_CLI="$ROOT/cae"
fi
read -r -a CLI <<<"$CAE_CLI"

lineno=0
while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    line=${line%%$'\r'}
    [[ -z "${line// }" || "$line" =~ ^[[:space:]]*# ]] && continue
    spec=${line%%|*}
    overrides={}
    [[ "$line" == *"|"* ]] && overrides=${line#*|}
    read -r name opts <<<"$spec"
    if [ -n "$ONLY" ] && [[ "$ONLY" != *",$name,"* ]]; then
        continue
    fi
    for ((seed = FIRST_SEED; seed < FIRST_SEED + SEEDS; seed++)); do
        run="$SCRATCH/$name-seed$seed"
        [ -n "$KEEP" ] && run="$KEEP/$name-seed$seed"
        rm -rf "$run"
        mkdir -p "$run"
        # The preset named in the options (default fmnist-tiny) with the overrides applied.
        preset=$(sed -n 's/.*--preset[ =]\([^ ]*\).*/\1/p' <<<"$opts")
        "${CLI[@]}" config "${preset:-fmnist-tiny}" >"$run/preset.json"
        python3 - "$run/preset.json" "$overrides" "$run/model.json" "$GRID:$lineno" <<'EOF'
import json, sys
base = json.load(open(sys.argv[1]))
try:
    over = json.loads(sys.argv[2])
except json.JSONDecodeError as e:
    sys.exit(f"quality-sweep: {sys.argv[4]}: the overrides are not a JSON object: {e}")
unknown = sorted(set(over) - set(base))
if unknown:
    sys.exit(f"quality-sweep: {sys.argv[4]}: unknown configuration keys {unknown}")
base.update(over)
json.dump(base, open(sys.argv[3], "w"), indent=1)
EOF
        # shellcheck disable=SC2086
        opts_nopreset=$(sed 's/--preset[ =][^ ]*//' <<<"$opts")
        echo "quality-sweep: $name seed $seed: cae pretrain$opts_nopreset --config model.json" >&2
        start=$(date +%s.%N)
        # shellcheck disable=SC2086
        if ! "${CLI[@]}" pretrain $opts_nopreset --config "$run/model.json" --seed "$seed" --out "$run/out" \
                --no-report >"$run/log.txt" 2>&1; then
            echo "quality-sweep: $name seed $seed failed; the end of its log:" >&2
            tail -5 "$run/log.txt" >&2
            continue
        fi
        end=$(date +%s.%N)
        python3 - "$run" "$name" "$seed" "$opts_nopreset" "$overrides" "$start" "$end" >>"$OUT" <<'EOF'
import json, sys
run, name, seed, opts, over, start, end = sys.argv[1:]
out = run + "/out"
metrics = [json.loads(l) for l in open(out + "/metrics.jsonl") if l.strip()]
steps = [m for m in metrics if "loss" in m]
tail = steps[-max(1, len(steps) // 10):]
def mean(k):
    v = [m[k] for m in tail if isinstance(m.get(k), (int, float))]
    return round(sum(v) / len(v), 5) if v else None
probe = json.load(open(out + "/probe.json"))
def scores(o, headline):
    # probe.json's unsuffixed scores are its headline features ("features"): [cls ; mean] ("cls_mean"),
    # or the mean patch token in files of older builds ("mean"); written here under explicit names.
    out = {"knn_" + headline: o["knn"], "linear_" + headline: o["linear"]}
    for k in ("knn_cls", "linear_cls", "knn_mean", "linear_mean"):
        if k in o:
            out[k] = o[k]
    return out
headline = probe.get("features", "mean")
runinfo = json.load(open(out + "/run.json"))
ips = [m["img_per_s"] for m in steps if "img_per_s" in m]
curve = [{"step": m["step"], "knn": m["knn"]} for m in metrics if "knn" in m and "loss" not in m]
line = {
    "name": name, "seed": int(seed), "options": opts.strip(), "overrides": json.loads(over),
    "config": runinfo.get("config"), "steps": runinfo.get("steps"), "batch": runinfo.get("batch"),
    "augmentation": runinfo.get("augmentation"), "mask": runinfo.get("mask"),
    "masked_patches": runinfo.get("masked_patches"),
    "wall_seconds": round(float(end) - float(start), 1),
    "images_per_second": round(sorted(ips)[len(ips) // 2], 1) if ips else None,
    "final_loss": mean("loss"), "final_loss_main": mean("loss_main"), "final_loss_align": mean("loss_align"),
    "knn_curve": curve,
    "pretrained": scores(probe["pretrained"], headline), "random_init": scores(probe["random_init"], headline),
    "raw_pixels": {"knn": probe["raw_pixels"]["knn"], "linear": probe["raw_pixels"]["linear"]},
    "probe_train": probe.get("train_size"), "probe_test": probe.get("test_size"),
}
print(json.dumps(line))
EOF
        tail -1 "$OUT" | python3 -c '
import json, sys
r = json.load(sys.stdin)
p = r["pretrained"]
print("quality-sweep: %s seed %d: [cls;mean] linear %.2f%% k-NN %.2f%%, mean linear %.2f%% k-NN %.2f%%, %.0f s" % (
    r["name"], r["seed"], 100 * p["linear_cls_mean"], 100 * p["knn_cls_mean"], 100 * p["linear_mean"],
    100 * p["knn_mean"], r["wall_seconds"]))' >&2
    done
done < "$GRID"
echo "quality-sweep: results in $OUT" >&2
