#!/usr/bin/env python3
"""Tabulates quality-sweep results (JSON lines from bench/quality-sweep.sh) as a Markdown table.

    bench/quality-summary.py bench/results/quality-sweep-*.jsonl [--sort linear_cls_mean]

One row per run name (seeds averaged; with several seeds each cell is mean +- sample standard
deviation), in the order the names first appear unless --sort names a probe score to sort by.
Columns: the options and configuration overrides, steps, median training images/s, wall
seconds, the final loss, then the pretrained encoder's k-NN and linear accuracy on [cls ; mean],
the cls token and the mean patch token.
"""
import argparse
import json
import statistics
import sys

SCORES = [("knn_cls_mean", "k-NN [cls;mean]"), ("linear_cls_mean", "linear [cls;mean]"), ("knn_cls", "k-NN cls"),
          ("linear_cls", "linear cls"), ("knn_mean", "k-NN mean"), ("linear_mean", "linear mean")]


def cell(values, scale=1.0, digits=2):
    values = [v * scale for v in values if v is not None]
    if not values:
        return "-"
    m = statistics.fmean(values)
    if len(values) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+")
    ap.add_argument("--sort", choices=[k for k, _ in SCORES])
    args = ap.parse_args()
    runs = {}
    for f in args.files:
        with open(f) as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                except json.JSONDecodeError as e:
                    sys.exit(f"{f}:{n}: not JSON: {e}")
                runs.setdefault(r["name"], []).append(r)
    rows = list(runs.items())
    if args.sort:
        rows.sort(key=lambda kv: -statistics.fmean(r["pretrained"].get(args.sort, 0) for r in kv[1]))
    head = ["run", "options", "config", "seeds", "steps", "img/s", "s", "loss"] + [h for _, h in SCORES]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, rs in rows:
        r0 = rs[0]
        over = ", ".join(f"{k} {v}" for k, v in r0.get("overrides", {}).items()) or "-"
        cells = [name, f"`{r0['options']}`" if r0["options"] else "-", over, str(len(rs)), str(r0["steps"]),
                 cell([r.get("images_per_second") for r in rs], digits=0),
                 cell([r.get("wall_seconds") for r in rs], digits=0), cell([r.get("final_loss") for r in rs], digits=3)]
        cells += [cell([r["pretrained"].get(k) for r in rs], 100) for k, _ in SCORES]
        print("| " + " | ".join(cells) + " |")
    base = next(iter(runs.values()))[0]
    for enc in ("random_init", "raw_pixels"):
        s = base.get(enc, {})
        print(f"\n{enc.replace('_', ' ')} (first run): " + ", ".join(
            f"{h} {100 * s[k]:.2f}" for k, h in SCORES + [("knn", "k-NN"), ("linear", "linear")] if k in s))


if __name__ == "__main__":
    main()
