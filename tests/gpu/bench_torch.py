"""PyTorch side of the GPU comparison: the reference CAE (tests/reference/cae_model.py) on CUDA,
timed per training step with CUDA events, one JSON line per variant on stdout.

A step is what cae_train_step does: zero_grad, forward (with the alignment pass), backward,
clip_grad_norm_(3.0), AdamW. Variants:
  fp32       eager float32, TF32 off for matmul and cuDNN (the precision of our fp32 backend)
  bf16       the same under torch.autocast(bfloat16)
  bf16-sdpa  bf16 with the attention done by F.scaled_dot_product_attention
  bf16-sdpa-compile  the same with the model under torch.compile (its compile time is the first
             step's, reported as compile_s; run it under a timeout)
Also, with --ceiling, an 8192^3 matmul in fp32 (TF32 off) and bf16: the machine's matrix ceilings;
with --kernels (alone), the fc1 GEMM and attention at the shapes bench_cuda_fusions times.

    python3 tests/gpu/bench_torch.py --batch 64 --steps 20 --warmup 5 [--variants fp32,bf16] [--ceiling]
    /usr/bin/python3 tests/gpu/bench_torch.py --device cpu --tiny --batch 2 --steps 2 --warmup 1 --masked 32
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import cae_model  # noqa: E402
from cae_model import CAEConfig, build_model, param_groups, trainable_named_parameters  # noqa: E402

BASE = dict(img_size=224, patch_size=16, in_chans=3, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0,
            regressor_depth=4, decoder_depth=4, decoder_num_heads=12, layer_scale_init_value=0.1,
            decoder_layer_scale_init_value=0.1, drop_path_rate=0.1)
ORIGINAL_MHA = cae_model.multi_head_attention


def sdpa_attention(q, k, v, num_heads):
    B, Nq, D = q.shape
    Nk = k.shape[1]
    hd = D // num_heads
    q = q.reshape(B, Nq, num_heads, hd).transpose(1, 2)
    k = k.reshape(B, Nk, num_heads, hd).transpose(1, 2)
    v = v.reshape(B, Nk, num_heads, hd).transpose(1, 2)
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, Nq, D)


def make_batch(cfg, batch, masked, device):
    g = torch.Generator().manual_seed(1)
    images = torch.randn(batch, cfg.in_chans, cfg.img_size, cfg.img_size, generator=g)
    mask = torch.zeros(batch, cfg.num_patches, dtype=torch.bool)
    for b in range(batch):
        mask[b, torch.randperm(cfg.num_patches, generator=g)[:masked]] = True
    return images.to(device), mask.to(device)


class Timer:
    """CUDA events on the GPU; a host clock on the CPU (--device cpu checks this script without a GPU)."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def start(self):
        if self.cuda:
            self.s, self.e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self.s.record()
        else:
            self.t0 = time.perf_counter()

    def stop_ms(self):
        if self.cuda:
            self.e.record()
            self.e.synchronize()
            return self.s.elapsed_time(self.e)
        return (time.perf_counter() - self.t0) * 1e3


def bench_variant(variant, batch, steps, warmup, masked, device, config):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cae_model.multi_head_attention = sdpa_attention if variant.endswith("sdpa") else ORIGINAL_MHA
    cfg = CAEConfig.from_dict(config)
    model = build_model(cfg, 0).to(device)
    model.train()
    compiled = variant.endswith("compile")
    step_model = torch.compile(model) if compiled else model
    images, mask = make_batch(cfg, batch, masked, device)
    opt = torch.optim.AdamW(param_groups(model, 0.05), lr=1.5e-3 * batch / 2048, betas=(0.9, 0.999), eps=1e-8)
    params = [p for _, p in trainable_named_parameters(model)]
    use_bf16 = variant.startswith("bf16")
    times, losses = [], []
    first_step_s = None
    timer = Timer(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for i in range(warmup + steps):
        t_wall = time.perf_counter()
        timer.start()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            out = step_model(images, mask)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, 3.0)
        opt.step()
        ms = timer.stop_ms()
        if i == 0:
            first_step_s = time.perf_counter() - t_wall
        if i >= warmup:
            times.append(ms)
        losses.append(float(out["loss"].detach()))
    med = statistics.median(times)
    result = {
        "impl": "pytorch", "variant": variant, "batch": batch, "masked": masked, "steps": steps, "warmup": warmup,
        "step_ms": round(med, 3), "img_per_s": round(batch / (med / 1e3), 2),
        "first_loss": losses[0], "last_loss": losses[-1], "first_step_s": round(first_step_s, 2),
        "compile_s": round(first_step_s, 2) if compiled else None,
        "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else None,
        "torch": torch.__version__, "tf32": False, "adamw": "foreach (default)",
        "step_ms_all": [round(t, 3) for t in times],
    }
    del model, step_model, opt, images, mask, out
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def ceiling():
    torch.backends.cuda.matmul.allow_tf32 = False
    out = {}
    n = 8192
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(n, n, device="cuda", dtype=dtype)
        b = torch.randn(n, n, device="cuda", dtype=dtype)
        for _ in range(3):
            a @ b
        torch.cuda.synchronize()
        ts = []
        for _ in range(10):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            a @ b
            e.record()
            e.synchronize()
            ts.append(s.elapsed_time(e))
        ms = statistics.median(ts)
        out[f"matmul_{name}_tflops"] = round(2 * n**3 / (ms / 1e3) / 1e12, 1)
        del a, b
    return {"impl": "ceiling", "n": n, **out}


def kernels(batch):
    """The products bench_cuda_fusions times on our side, in PyTorch at the same shapes: the fc1
    GEMM with its bias (F.linear) in bf16 and fp32 (TF32 off), and attention forward + backward
    with SDPA in bf16 and as batched matmuls + softmax in fp32. Median ms of CUDA-event timings."""
    torch.backends.cuda.matmul.allow_tf32 = False
    T, D, M, H, hd = 99, 768, 3072, 12, 64
    rows = batch * T
    out = []

    def timed(fn, reps=20):
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        ts = []
        for _ in range(reps):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            e.synchronize()
            ts.append(s.elapsed_time(e))
        return statistics.median(ts)

    for dtype, name in ((torch.bfloat16, "bf16"), (torch.float32, "fp32")):
        x = torch.randn(rows, D, device="cuda", dtype=dtype)
        w = torch.randn(M, D, device="cuda", dtype=dtype) * 0.02
        b = torch.randn(M, device="cuda", dtype=dtype)
        out.append({"impl": "pytorch-kernels", "name": f"linear {name} (F.linear with bias)",
                    "shape": f"{rows}x{M}x{D}", "ms": round(timed(lambda: F.linear(x, w, b)), 4)})
        del x, w, b
    q, k, v = (torch.randn(batch, H, T, hd, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    g = torch.randn(batch, H, T, hd, device="cuda", dtype=torch.bfloat16)

    def sdpa():
        o = F.scaled_dot_product_attention(q, k, v)
        torch.autograd.grad(o, (q, k, v), g)

    out.append({"impl": "pytorch-kernels", "name": "attention fwd+bwd bf16 (SDPA)", "shape": f"{batch}x{H}x{T}x{hd}",
                "ms": round(timed(sdpa), 4)})
    q32, k32, v32 = (t.detach().float().requires_grad_() for t in (q, k, v))
    g32 = g.float()

    def eager32():
        p = torch.softmax(q32 @ k32.transpose(-1, -2) * hd**-0.5, dim=-1)
        torch.autograd.grad(p @ v32, (q32, k32, v32), g32)

    out.append({"impl": "pytorch-kernels", "name": "attention fwd+bwd fp32 (matmul + softmax)",
                "shape": f"{batch}x{H}x{T}x{hd}", "ms": round(timed(eager32), 4)})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--masked", type=int, default=98)
    ap.add_argument("--variants", default="fp32,bf16,bf16-sdpa")
    ap.add_argument("--ceiling", action="store_true")
    ap.add_argument("--kernels", action="store_true", help="time the single products (see kernels()) and exit")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="a tiny configuration (to check this script quickly)")
    args = ap.parse_args()
    device = torch.device(args.device)
    config = dict(BASE)
    if args.tiny:
        config.update(img_size=32, patch_size=4, embed_dim=64, depth=2, num_heads=4, regressor_depth=1,
                      decoder_depth=1, decoder_num_heads=4)
    if args.kernels:
        for r in kernels(args.batch):
            print(json.dumps(r), flush=True)
        return
    if args.ceiling and device.type == "cuda":
        print(json.dumps(ceiling()), flush=True)
    for v in args.variants.split(","):
        try:
            print(json.dumps(bench_variant(v, args.batch, args.steps, args.warmup, args.masked, device, config)),
                  flush=True)
        except Exception as e:  # e.g. out of memory: report and go on with the next variant
            print(json.dumps({"impl": "pytorch", "variant": v, "batch": args.batch, "error": repr(e)[:300]}),
                  flush=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
