"""Collects the one-shot GPU check (tests/gpu/run.sh) into results.json and summary.md.

Reads from --work: stages.tsv (stage, rc or "skipped", seconds), env.txt (key=value),
ptxas.json; from --out: tests.txt (every test run, each after a "=== <stage>" line),
bench.json (one JSON object per line).
"""

import argparse
import json
import os
import re

ERR_LINE = re.compile(r"^\s+(.*?)\s+rel err ([0-9.e+\-]+|inf|nan)\s+\(tol ([0-9.e+\-]+)\)(.*)$")
CASES = re.compile(r"(\d+) case\(s\), (\d+) failure\(s\)")
CTEST = re.compile(r"(\d+)% tests passed, (\d+) tests failed out of (\d+)")
SANITIZER = re.compile(r"ERROR SUMMARY: (\d+) error")


def read(path, default=""):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return default


def split_sections(text):
    sections, name, lines = {}, None, []
    for line in text.splitlines():
        if line.startswith("=== "):
            if name is not None:
                sections[name] = lines
            name, lines = line[4:].strip(), []
        else:
            lines.append(line)
    if name is not None:
        sections[name] = lines
    return sections


def analyse(lines):
    r = {"checks": 0, "failed_checks": [], "worst": None, "cases": None, "ctest": None, "skipped": [],
         "sanitizer_errors": None, "fail_lines": []}
    worst_ratio = -1.0
    for line in lines:
        line = re.sub(r"^\d+: ", "", line)  # ctest -V prefixes each line with the test number
        m = ERR_LINE.match(line)
        if m:
            label, err, tol, rest = m.group(1), m.group(2), float(m.group(3)), m.group(4)
            e = float("inf") if err in ("inf", "nan") else float(err)
            r["checks"] += 1
            ratio = e / tol if tol > 0 else (0.0 if e == 0 else float("inf"))
            if ratio > worst_ratio:
                worst_ratio = ratio
                r["worst"] = {"label": label, "rel_err": e, "tol": tol}
            if "FAIL" in rest:
                r["failed_checks"].append(line.strip()[:200])
            continue
        if "FAIL" in line and len(r["fail_lines"]) < 30:
            r["fail_lines"].append(line.strip()[:200])
        if "SKIPPED" in line:
            r["skipped"].append(line.strip()[:200])
        m = CASES.search(line)
        if m:
            c = r["cases"] or [0, 0]
            r["cases"] = [c[0] + int(m.group(1)), c[1] + int(m.group(2))]
        m = CTEST.search(line)
        if m:
            r["ctest"] = {"passed_percent": int(m.group(1)), "failed": int(m.group(2)), "total": int(m.group(3))}
        m = SANITIZER.search(line)
        if m:
            r["sanitizer_errors"] = int(m.group(1))
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--elapsed", type=int, default=0)
    args = ap.parse_args()

    env = {}
    for line in read(os.path.join(args.work, "env.txt")).splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    stages = []
    for line in read(os.path.join(args.work, "stages.tsv")).splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            stages.append({"stage": parts[0], "rc": parts[1], "seconds": int(parts[2])})
    sections = split_sections(read(os.path.join(args.out, "tests.txt")))
    tests = {name: analyse(lines) for name, lines in sections.items()}
    bench = []
    for line in read(os.path.join(args.out, "bench.json")).splitlines():
        try:
            bench.append(json.loads(line))
        except ValueError:
            pass
    ptxas = []
    try:
        with open(os.path.join(args.work, "ptxas.json")) as f:
            ptxas = json.load(f)
    except (OSError, ValueError):
        pass
    spills = sorted({r["kernel"] for r in ptxas if r.get("spill_stores") or r.get("spill_loads")})
    results = {"env": env, "elapsed_s": args.elapsed, "stages": stages, "tests": tests, "bench": bench,
               "ptxas": {"kernels": len(ptxas), "with_spills": spills}}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)

    md = ["# CUDA backend: one-shot GPU check", ""]
    md.append(f"{env.get('gpu', '?')}, driver {env.get('driver', '?')}, nvcc {env.get('nvcc', '?')}, "
              f"torch {env.get('torch', '?')}, commit {env.get('commit', '?')[:12]}, {args.elapsed} s")
    md.append(f"cuBLASLt: {env.get('cublaslt') or 'none found (fallback GEMM)'}")
    md += ["", "| stage | rc | s | verdict |", "|---|---|---|---|"]
    for s in stages:
        t = tests.get(s["stage"])
        verdict = ""
        if t:
            bits = []
            if t["ctest"]:
                c = t["ctest"]
                bits.append(f"ctest {c['total'] - c['failed']}/{c['total']} passed")
            if t["cases"]:
                bits.append(f"{t['cases'][0] - t['cases'][1]}/{t['cases'][0]} cases ok")
            if t["checks"]:
                bits.append(f"{t['checks'] - len(t['failed_checks'])}/{t['checks']} checks ok")
            if t["worst"]:
                w = t["worst"]
                bits.append(f"worst {w['rel_err']:.1e} (tol {w['tol']:.0e}) {w['label'][:50]}")
            if t["sanitizer_errors"] is not None:
                bits.append(f"{t['sanitizer_errors']} sanitizer errors")
            if t["skipped"]:
                bits.append("SKIPPED")
            verdict = "; ".join(bits)
        md.append(f"| {s['stage']} | {s['rc']} | {s['seconds']} | {verdict} |")
    failed = [(name, t["failed_checks"] + t["fail_lines"]) for name, t in tests.items()
              if t["failed_checks"] or t["fail_lines"]]
    if failed:
        md += ["", "Failures (first of each stage):"]
        for name, lines in failed:
            for line in lines[:5]:
                md.append(f"- {name}: `{line}`")
    md += ["", "| impl | variant | batch | step ms | img/s | MFU | peak GiB |", "|---|---|---|---|---|---|---|"]
    fusions = [b for b in bench if b.get("bench") == "cuda-fusions"]
    torch_kernels = [b for b in bench if b.get("impl") == "pytorch-kernels"]
    bench = [b for b in bench if b.get("bench") != "cuda-fusions" and b.get("impl") != "pytorch-kernels"]
    for b in bench:
        if b.get("impl") == "ceiling":
            continue
        if b.get("impl") == "cae-native":
            variant = (b.get("precision", "?") + (", graphs" if b.get("replayed_steps") else ", no graphs")
                       if "error" not in b else "")
        else:
            variant = b.get("variant", "")
        if "error" in b:
            md.append(f"| {b.get('impl')} | {variant} | {b.get('batch', '')} | error: {str(b['error'])[:60]} | | | |")
            continue
        mfu = f"{b['mfu']:.3f}" if b.get("mfu") else ""
        md.append(f"| {b.get('impl')} | {variant} | {b.get('batch')} | {b.get('step_ms')} | {b.get('img_per_s')} | "
                  f"{mfu} | {b.get('peak_mem_gib', '') or ''} |")
    # Ours against PyTorch's best eager bf16 variant at each batch.
    for batch in sorted({b.get("batch") for b in bench if b.get("impl") == "cae-native" and "error" not in b}):
        ours = [b for b in bench if b.get("impl") == "cae-native" and b.get("batch") == batch
                and b.get("precision") == "bf16" and "error" not in b]
        torch_bf16 = [b for b in bench if b.get("impl") == "pytorch" and b.get("batch") == batch
                      and str(b.get("variant", "")).startswith("bf16") and "compile" not in b.get("variant", "")
                      and "error" not in b]
        if ours and torch_bf16:
            o = max(ours, key=lambda b: b["img_per_s"])
            t = max(torch_bf16, key=lambda b: b["img_per_s"])
            md.append(f"\nbatch {batch}: ours bf16 {o['img_per_s']} img/s vs PyTorch eager {t['variant']} "
                      f"{t['img_per_s']} img/s: {o['img_per_s'] / t['img_per_s']:.2f}x")
    for b in bench:
        if b.get("impl") == "ceiling":
            md.append(f"\nmatmul {b['n']}^3: fp32 (no TF32) {b.get('matmul_fp32_tflops')} TFLOP/s, "
                      f"bf16 {b.get('matmul_bf16_tflops')} TFLOP/s")
    if fusions:
        md += ["", "| fused / bf16 path | ms | replaces | ms | speed-up |", "|---|---|---|---|---|"]
        for f in fusions:
            if "error" in f:
                md.append(f"| error: {str(f['error'])[:80]} | | | | |")
                continue
            md.append(f"| {f['name']} ({f['shape']}) | {f['ms']} | {f['replaces']} | {f['ms_replaced']} | "
                      f"{f['speedup']:.2f}x |")
    if torch_kernels:
        md += ["", "| PyTorch at the same shapes | ms |", "|---|---|"]
        for k in torch_kernels:
            md.append(f"| {k.get('name')} ({k.get('shape')}) | {k.get('ms', k.get('error', ''))} |")
    md.append(f"\nptxas (sm_90a): {len(ptxas)} kernels, spills in: {', '.join(spills) if spills else 'none'}")
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
