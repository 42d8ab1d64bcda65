#!/usr/bin/env bash
# The one-shot GPU check of the CUDA backend (see tests/gpu/README.md). Run from anywhere on the
# GPU machine; writes into $OUT (default build/gpu-out):
#   log.txt       everything, in order
#   tests.txt     the output of every test run (per-op errors, model comparisons, sanitizers)
#   ptxas.txt     registers / shared memory / spills per kernel (sm_90a) and SASS instruction counts
#   bench.json    one JSON object per line: our cae_train_step and PyTorch's, and the matmul ceilings
#   tracking.json bf16 against fp32 over 300 steps of the Java pretraining on CUDA
#   results.json  every stage's status and time, test verdicts, worst errors, the benchmark table
#   summary.md    the short table, also printed last
# Every stage runs under `timeout` and a failing stage never stops the next one; stages that no
# longer fit in the time budget (CAE_GPU_BUDGET_S, default 480 s) are skipped and say so.
set -uo pipefail
export PYTHONUNBUFFERED=1

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1
OUT=${OUT:-$ROOT/build/gpu-out}
BUILD=${CAE_GPU_BUILD_DIR:-$ROOT/build/gpu}    # overrides for a dry run elsewhere
WORK=${CAE_GPU_WORK_DIR:-$BUILD-work}
mkdir -p "$OUT" "$WORK"
: > "$WORK/stages.tsv"
: > "$OUT/tests.txt"
: > "$OUT/bench.json"
exec > >(tee -a "$OUT/log.txt") 2>&1
TEE_PID=$!

START=$(date +%s)
BUDGET=${CAE_GPU_BUDGET_S:-480}
elapsed() { echo $(( $(date +%s) - START )); }

# stage NAME LIMIT_S KIND CMD...: runs CMD (through bash -c) with a timeout no longer than what is
# left of the budget; KIND "test" also copies its output to tests.txt. Records name, rc, seconds.
stage() {
    local name=$1 limit=$2 kind=$3
    shift 3
    local left=$(( BUDGET - $(elapsed) ))
    if (( left < 15 )); then
        echo "=== SKIP $name: the time budget is spent ($(elapsed) s of $BUDGET)"
        printf '%s\tskipped\t0\n' "$name" >> "$WORK/stages.tsv"
        [[ $kind == test ]] && echo "=== SKIP $name: the time budget is spent" >> "$OUT/tests.txt"
        return
    fi
    local t=$(( limit < left ? limit : left ))
    echo "=== $name (timeout ${t} s, at $(elapsed) s)"
    local s rc
    s=$(date +%s)
    if [[ $kind == test ]]; then
        echo "=== $name" >> "$OUT/tests.txt"
        timeout -k 10 "$t" bash -c "$*" 2>&1 | tee -a "$OUT/tests.txt"
        rc=${PIPESTATUS[0]}
    else
        timeout -k 10 "$t" bash -c "$*"
        rc=$?
    fi
    (( rc == 124 || rc == 137 )) && echo "=== $name: TIMED OUT after ${t} s"
    echo "=== $name: rc $rc in $(( $(date +%s) - s )) s"
    printf '%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - s ))" >> "$WORK/stages.tsv"
}

# ---------------------------------------------------------------- 0. the machine
stage env 60 info '
    date -u; uname -a; nproc; free -g | head -2
    nvidia-smi || true
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit --format=csv || true
    nvcc --version | tail -2 || true
    cmake --version | head -1; (ninja --version || true); g++ --version | head -1
    python3 -c "import torch, sys; print(\"python\", sys.version.split()[0], \"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"cudnn\", torch.backends.cudnn.version(), torch.cuda.get_device_name(0))" || true
    echo "commit: $(git rev-parse HEAD 2>/dev/null || echo "unknown (no .git here)")"
    git status --short 2>/dev/null | head -40 || true
    (ldconfig -p | grep -i -E "openblas|libcuda.so" | head -5) || true
    which compute-sanitizer cuobjdump c++filt || true
'
{
    echo "commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)"
    echo "gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
    echo "driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)"
    echo "nvcc=$(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' | head -1)"
    echo "torch=$(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null)"
} > "$WORK/env.txt"

# ---------------------------------------------------------------- 1. cuBLASLt
if [[ -z ${CAE_CUBLASLT:-} ]]; then
    SITE=$(timeout 30 python3 -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null || true)
    CAND=""
    if [[ -n $SITE && -d $SITE/nvidia ]]; then
        CAND=$(timeout 30 find "$SITE/nvidia" -name 'libcublasLt.so.13' 2>/dev/null | head -1)
        [[ -z $CAND ]] && CAND=$(timeout 30 find "$SITE/nvidia" -name 'libcublasLt.so*' 2>/dev/null | sort | head -1)
    fi
    [[ -z $CAND && -e /usr/local/cuda/lib64/libcublasLt.so.13 ]] && CAND=/usr/local/cuda/lib64/libcublasLt.so.13
    if [[ -n $CAND ]]; then export CAE_CUBLASLT=$CAND; fi
fi
echo "=== cuBLASLt: CAE_CUBLASLT=${CAE_CUBLASLT:-<none found: the fallback GEMM will be used>}"
echo "cublaslt=${CAE_CUBLASLT:-}" >> "$WORK/env.txt"

# ---------------------------------------------------------------- 2. build
GEN=""
command -v ninja > /dev/null && [[ ! -f $BUILD/CMakeCache.txt ]] && GEN="-G Ninja"
stage build 330 info "
    set -o pipefail
    cmake -S '$ROOT' -B '$BUILD' $GEN -DCMAKE_BUILD_TYPE=Release -DCAE_CUDA=ON -DCAE_EMU=OFF > '$WORK/configure.log' 2>&1 || { cat '$WORK/configure.log'; exit 1; }
    grep -E 'CUDA backend|CPU GEMM' '$WORK/configure.log'
    cmake --build '$BUILD' -j \$(nproc) > '$WORK/build.log' 2>&1; rc=\$?
    grep -E 'error|warning' '$WORK/build.log' | grep -v 'ptxas info' | head -40
    tail -3 '$WORK/build.log'
    exit \$rc
"
stage ptxas 60 info "
    python3 '$ROOT/tests/gpu/ptxas_summary.py' '$WORK/build.log' --arch sm_90a --json '$WORK/ptxas.json' > '$OUT/ptxas.txt'
    if command -v cuobjdump > /dev/null && [[ -f '$BUILD/lib/libcae.so' ]]; then
        cuobjdump -sass -arch sm_90a '$BUILD/lib/libcae.so' > '$WORK/sass.txt' 2>&1 || true
        echo >> '$OUT/ptxas.txt'
        python3 '$ROOT/tests/gpu/ptxas_summary.py' '$WORK/build.log' --arch sm_90a --sass '$WORK/sass.txt' --sass-only >> '$OUT/ptxas.txt'
    fi
    tail -4 '$OUT/ptxas.txt'
"

T=$BUILD/native/tests
LAB=$BUILD/native/dev
# ---------------------------------------------------------------- 3. correctness
stage "ctest -L gpu" 300 test "cd '$BUILD' && ctest -L gpu -V --timeout 280"
stage "ctest -L cpu" 240 test "set -o pipefail; cd '$BUILD' && ctest -L cpu -V --timeout 200 | grep -E 'Test +#|tests passed|FAIL|rel err .*FAIL|SKIPPED|cuBLASLt|compiled' "
# After a failure, the ops again with a device synchronization after every kernel: a fault is
# then reported at the kernel that caused it, not at a later call.
if [[ $(tail -2 "$WORK/stages.tsv" | head -1 | cut -f2) != 0 ]]; then
    stage "ops CAE_CUDA_SYNC=1 (after a failure)" 150 test "CAE_CUDA_SYNC=1 '$T/test_cuda_ops'"
fi
stage "ops CAE_GEMM=fallback" 150 test "CAE_GEMM=fallback '$T/test_cuda_ops'"
stage "ops CAE_GEMM=mma" 150 test "CAE_GEMM=mma '$T/test_cuda_ops'"
# The kernel lab's fused attention, checked against the library's attention and timed beside it.
: > "$WORK/lab_raw.txt"
stage "attention lab" 120 test "set -o pipefail; '$LAB/attention_lab' | tee -a '$WORK/lab_raw.txt'"

# ---------------------------------------------------------------- 4. benchmarks, ours and PyTorch's in turn
# CAE-B (ViT-B/16 224, pixel target), 98 of 196 patches masked. Ours at bf16 (the CUDA default)
# and fp32, with the MFU against a GEMM of the same precision measured in the same process;
# PyTorch eager with bf16 autocast (its attention, and SDPA), fp32, and torch.compile last.
bench_ours() {  # batch precision [environment assignment]
    stage "bench ours b$1 $2${3:+ $3}" 150 info "set -o pipefail; ${3:-} '$T/bench_cuda_step' --config base --batch $1 --precision $2 --steps 20 --warmup 3 --peak 8192 | tee -a '$WORK/bench_raw.txt'"
}
bench_torch() {  # batch [extra args]
    local b=$1
    shift
    stage "bench torch b$b $*" 200 info "set -o pipefail; python3 '$ROOT/tests/gpu/bench_torch.py' --batch $b --steps 20 --warmup 5 $* | tee -a '$WORK/bench_raw.txt'"
}
: > "$WORK/bench_raw.txt"
bench_ours 128 bf16
bench_torch 128 --variants bf16,bf16-sdpa --ceiling
bench_ours 256 bf16
bench_torch 256 --variants bf16,bf16-sdpa
bench_ours 128 fp32
bench_torch 128 --variants fp32
bench_ours 128 bf16 CAE_CUDA_GRAPHS=0
bench_torch 128 --variants bf16-sdpa-compile
# Each fused or bf16 path beside the ops it replaces, at the CAE-B batch-128 shapes.
stage "bench fusions" 90 info "set -o pipefail; '$LAB/bench_cuda_fusions' | tee -a '$WORK/bench_raw.txt'"
stage "bench torch kernels" 90 info "set -o pipefail; python3 '$ROOT/tests/gpu/bench_torch.py' --kernels --batch 128 | tee -a '$WORK/bench_raw.txt'"
cat "$WORK/lab_raw.txt" "$WORK/bench_raw.txt" | grep '^{' > "$OUT/bench.json" || true

# ---------------------------------------------------------------- 4b. Java end to end on CUDA
# With the runtime and CLI jar from tests/gpu/prepare-carry.sh (the machine has no Java): the
# library built above, through the Java API and the CLI, training on the embedded Fashion-MNIST.
CARRY="$ROOT/.gpu-carry"
if [[ -f $CARRY/jre.tgz && -f $CARRY/cae-cli.jar ]]; then
    stage "java runtime" 30 info "tar xzf '$CARRY/jre.tgz' -C '$WORK' && '$WORK/jre/bin/java' -version"
    CAE="'$WORK/jre/bin/java' --enable-native-access=ALL-UNNAMED -Dcae.library.path='$BUILD/lib/libcae.so' -jar '$CARRY/cae-cli.jar'"
    stage "java cae info" 60 test "$CAE info"
    stage "java cae info --check" 60 test "$CAE info --check"
    stage "java cae pretrain cuda" 180 test "$CAE pretrain --backend cuda --steps 400 --batch 256 --probe-train 5000 --probe-test 1000 --no-report --out '$WORK/pretrain'"
    stage "java cae bench base b128 cuda" 120 test "$CAE bench --preset base --batch 128 --steps 10 --warmup 3 --backend cuda"
    # bf16 against fp32 over 300 steps of the same run on CUDA (loss windows in tracking.json).
    CAE_PLAIN="$WORK/jre/bin/java --enable-native-access=ALL-UNNAMED -Dcae.library.path=$BUILD/lib/libcae.so -jar $CARRY/cae-cli.jar"
    stage "bf16 tracking cuda" 150 test "'$ROOT/bench/bf16-tracking.sh' --backend cuda --steps 300 --batch 256 --out '$WORK/tracking' --cae '$CAE_PLAIN' && cp '$WORK/tracking/tracking.json' '$OUT/tracking.json'"
else
    echo "=== SKIP java end to end: no .gpu-carry (run tests/gpu/prepare-carry.sh here and carry .gpu-carry)" | tee -a "$OUT/tests.txt"
    printf 'java end to end\tskipped\t0\n' >> "$WORK/stages.tsv"
fi

# ---------------------------------------------------------------- 5. sanitizers on a tiny step
if command -v compute-sanitizer > /dev/null; then
    SAN="compute-sanitizer --error-exitcode 1 --print-limit 20"
    STEP="'$T/bench_cuda_step' --config tiny --batch 2 --steps 2 --warmup 0"
    stage "memcheck tiny step" 120 test "$SAN --tool memcheck $STEP"
    stage "racecheck tiny step CAE_GEMM=mma" 120 test "CAE_GEMM=mma $SAN --tool racecheck $STEP"
    stage "racecheck tiny step CAE_GEMM=fallback" 120 test "CAE_GEMM=fallback $SAN --tool racecheck $STEP"
    stage "initcheck tiny step CAE_GEMM=fallback" 120 test "CAE_GEMM=fallback $SAN --tool initcheck $STEP"
    stage "memcheck ops CAE_GEMM=mma (attention)" 120 test "CAE_GEMM=mma $SAN --tool memcheck '$T/test_cuda_ops' attention"
else
    echo "=== SKIP sanitizers: compute-sanitizer is not on the PATH" | tee -a "$OUT/tests.txt"
    printf 'sanitizers\tskipped\t0\n' >> "$WORK/stages.tsv"
fi

# ---------------------------------------------------------------- 6. extras while time is left
stage "gemm with TF32 (cuBLASLt)" 60 test "CAE_TF32=1 '$T/test_cuda_ops' gemm"
stage "gemm with TF32 (mma, one pass)" 60 test "CAE_GEMM=mma CAE_TF32=1 '$T/test_cuda_ops' gemm"
stage "model CAE_GEMM=fallback" 150 test "CAE_GEMM=fallback '$T/test_cuda_model'"

# ---------------------------------------------------------------- 7. results
python3 "$ROOT/tests/gpu/summarize.py" --out "$OUT" --work "$WORK" --elapsed "$(elapsed)" || echo "summarize.py failed"
echo
cat "$OUT/summary.md" 2>/dev/null || echo "(no summary.md)"
# Let tee finish writing log.txt before the files are collected.
exec 1>&- 2>&-
wait "$TEE_PID" 2>/dev/null || true
