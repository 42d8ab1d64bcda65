"""Summarizes the `-Xptxas=-v` lines of a build log: one row per kernel and architecture with
registers, shared memory, stack frame and spills, kernel names demangled (c++filt when present)
and shortened.

    python3 tests/gpu/ptxas_summary.py build.log [--arch sm_90a] [--json out.json]
    python3 tests/gpu/ptxas_summary.py build.log --sass sass.txt --sass-only   # cuobjdump -sass output

With --sass: per kernel, counts of the SASS instructions that say which path it is on: HMMA /
HGMMA (tensor cores), FFMA (fp32 FMA), DFMA/DADD (fp64), LDL/STL (local memory: spills or
arrays indexed at run time), LDS/STS (shared memory), LDG/STG (global).
"""

import argparse
import json
import re
import shutil
import subprocess
import sys

ENTRY = re.compile(r"Compiling entry function '([^']+)' for '([^']+)'")
PROPS = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
USED = re.compile(r"Used (\d+) registers(?:, used (\d+) barriers)?(?:, (\d+) bytes cumulative stack size)?"
                  r"(?:, (\d+) bytes smem)?")


def demangle(names):
    if not names or shutil.which("c++filt") is None:
        return {n: n for n in names}
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True).stdout.splitlines()
    return dict(zip(names, out)) if len(out) == len(names) else {n: n for n in names}


def shorten(name):
    name = re.sub(r"\(anonymous namespace\)::", "", name)
    name = name.replace("cae::cuda::", "")
    name = re.sub(r"^void ", "", name)
    name = re.sub(r"\((?:[^()]|\([^()]*\))*\)$", "", name)  # the parameter list
    return name


def parse(text):
    rows, cur = [], None
    for line in text.splitlines():
        m = ENTRY.search(line)
        if m:
            cur = {"mangled": m.group(1), "arch": m.group(2), "registers": None, "smem": 0, "stack": 0,
                   "spill_stores": 0, "spill_loads": 0}
            rows.append(cur)
            continue
        if cur is None:
            continue
        m = PROPS.search(line)
        if m:
            cur["stack"], cur["spill_stores"], cur["spill_loads"] = map(int, m.groups())
            continue
        m = USED.search(line)
        if m and cur["registers"] is None:
            cur["registers"] = int(m.group(1))
            cur["smem"] = int(m.group(4) or 0)
    names = demangle(sorted({r["mangled"] for r in rows}))
    for r in rows:
        r["kernel"] = shorten(names.get(r["mangled"], r["mangled"]))
    return rows


SASS_FUNCTION = re.compile(r"Function : (\S+)")
SASS_OPS = ("HGMMA", "HMMA", "FFMA", "DFMA", "DADD", "LDL", "STL", "LDS", "STS", "LDG", "STG")


def parse_sass(text):
    counts, cur = {}, None
    for line in text.splitlines():
        m = SASS_FUNCTION.search(line)
        if m:
            cur = counts.setdefault(m.group(1), dict.fromkeys(SASS_OPS, 0))
            continue
        if cur is None or "/*" not in line:
            continue
        body = line.split("*/", 1)[-1] if line.strip().startswith("/*") else line
        body = re.sub(r"^\s*@!?U?P[T0-9]+\s+", "", body)  # a predicate guard
        op = re.search(r"\b([A-Z][A-Z0-9]+)(?:\.[A-Z0-9_.]+)?\s", body + " ")
        if op and op.group(1) in cur:
            cur[op.group(1)] += 1
    names = demangle(sorted(counts))
    return {shorten(names.get(k, k)): v for k, v in counts.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--arch", default="sm_90a")
    ap.add_argument("--json")
    ap.add_argument("--sass")
    ap.add_argument("--sass-only", action="store_true")
    args = ap.parse_args()
    if args.sass:
        with open(args.sass, errors="replace") as f:
            sass = parse_sass(f.read())
        width = max([len(k) for k in sass] + [6])
        print(f"SASS instruction counts ({args.arch})")
        print(f"{'kernel':<{width}}  " + " ".join(f"{op:>6}" for op in SASS_OPS))
        for k in sorted(sass):
            print(f"{k:<{width}}  " + " ".join(f"{sass[k][op]:>6}" for op in SASS_OPS))
        if args.sass_only:
            return 0
    with open(args.log, errors="replace") as f:
        rows = [r for r in parse(f.read()) if r["arch"] == args.arch]
    rows.sort(key=lambda r: r["kernel"])
    width = max([len(r["kernel"]) for r in rows] + [6])
    print(f"{'kernel':<{width}}  arch     regs   smem  stack  spill st/ld")
    for r in rows:
        print(f"{r['kernel']:<{width}}  {r['arch']:<7} {r['registers'] or 0:>5} {r['smem']:>6} {r['stack']:>6}"
              f"  {r['spill_stores']}/{r['spill_loads']}")
    spills = [r for r in rows if r["spill_stores"] or r["spill_loads"]]
    print(f"{len(rows)} kernels for {args.arch}; {len(spills)} with spills")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
