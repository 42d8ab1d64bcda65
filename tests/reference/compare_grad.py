#!/usr/bin/python3
"""Compares two `grad` outputs (ours from `./cae grad`, the reference's from
`cae_reference.py grad`): every tensor's relative L2 error, and the worst.

    /usr/bin/python3 tests/reference/compare_grad.py OURS.safetensors REFERENCE.safetensors
"""
import sys

import numpy as np

import safetensors_io as st


def load(path):
    r = st.load_file(path)
    return r[0] if isinstance(r, tuple) else r


def main(ours_path, ref_path):
    ours, ref = load(ours_path), load(ref_path)
    missing = sorted(set(ref) - set(ours))
    extra = sorted(set(ours) - set(ref))
    if missing or extra:
        print(f"tensors only in the reference: {missing}; only in ours: {extra}")
    worst = (0.0, "")
    for name in sorted(set(ref) & set(ours)):
        a = np.asarray(ours[name], dtype=np.float64)
        b = np.asarray(ref[name], dtype=np.float64)
        if a.shape != b.shape:
            print(f"{name}: shape {a.shape} vs {b.shape}")
            worst = (float("inf"), name)
            continue
        den = max(np.linalg.norm(b), 1e-30)
        err = np.linalg.norm(a - b) / den
        # norm1_k.bias of the regressor has an exactly zero gradient: compare it absolutely.
        kind = "abs" if name.endswith("norm1_k.bias") else "rel"
        if kind == "abs":
            err = float(np.max(np.abs(a - b)))
        print(f"{name:70s} {kind} err {err:.2e}")
        if kind == "rel" and err > worst[0]:
            worst = (err, name)
    print(f"worst relative error: {worst[0]:.2e} ({worst[1]})")
    return 0 if not missing and worst[0] <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
