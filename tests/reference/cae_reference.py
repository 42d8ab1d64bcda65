#!/usr/bin/python3
"""PyTorch reference for CAE v1 (pixel target): golden files, gradients, benchmark, self-checks.

Run with Debian's /usr/bin/python3 (python3-torch 1.13, CPU). Subcommands:
  generate  [--out DIR] [--dtype float64|float32]       golden safetensors per configuration
  init      --config JSON --seed S --out CKPT           freshly initialized checkpoint
  batch     --config JSON --batch B --masked M --seed S --out IN   random images + masks
  grad      --checkpoint CKPT --batch IN --out OUT      losses + gradients (drop path off)
  bench     --config JSON --batch B --steps N --threads T [--warmup W] [--drop-path]
  selfcheck [--goldens DIR]                             gradcheck, parameter counts, consistency
--config takes a JSON object or a path to a file holding one. See README.md.
"""

import argparse
import copy
import json
import math
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cae_model import (CAE, CAEConfig, build_model, check_mask, param_groups, patchify,  # noqa: E402
                       pixel_norm_target, sincos_position_embedding, trainable_named_parameters)
from safetensors_io import load_file, save_file  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN_FORMAT = "cae-golden/1"
CHECKPOINT_FORMAT = "cae-checkpoint/1"

# Optimizer, section 2.4
WEIGHT_DECAY = 0.05
BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
GOLDEN_LRS = (1e-3, 2e-3, 3e-3)
MODEL_SEED = 0
BATCH_SEED = 1

_BASE = dict(mlp_ratio=4.0, layer_scale_init_value=0.1, decoder_layer_scale_init_value=0.1)
GOLDEN_CASES = {
    "fmnist_tiny": dict(batch=4, masked=24, config=dict(
        _BASE, img_size=28, patch_size=4, in_chans=1, embed_dim=32, depth=2, num_heads=4,
        regressor_depth=2, decoder_depth=2, decoder_num_heads=4)),
    "rgb_patch8": dict(batch=3, masked=8, config=dict(
        _BASE, img_size=32, patch_size=8, in_chans=3, embed_dim=48, depth=2, num_heads=3,
        regressor_depth=1, decoder_depth=1, decoder_num_heads=3)),
    "mixed_depths": dict(batch=2, masked=15, config=dict(
        img_size=24, patch_size=4, in_chans=3, embed_dim=24, depth=3, num_heads=2, mlp_ratio=2.0,
        regressor_depth=3, decoder_depth=1, decoder_num_heads=3, layer_scale_init_value=0.5,
        decoder_layer_scale_init_value=0.25, align_loss_weight=1.5)),
}

DTYPES = {"float64": torch.float64, "float32": torch.float32}


# ---------------------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------------------

def parse_config_arg(arg):
    text = arg if arg.lstrip().startswith("{") else open(arg, encoding="utf-8").read()
    return CAEConfig.from_json(text)


def make_batch(cfg, batch, masked, seed):
    """Standard-normal images F32 [B,C,H,W]; mask U8 [B,N] with `masked` ones per row at
    positions from a seeded random permutation per row."""
    n = cfg.num_patches
    if not 1 <= masked <= n - 1:
        raise ValueError(f"--masked {masked}: need 1..{n - 1} for {n} patches")
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, cfg.in_chans, cfg.img_size, cfg.img_size, generator=g)
    mask = torch.zeros(batch, n, dtype=torch.uint8)
    for b in range(batch):
        mask[b, torch.randperm(n, generator=g)[:masked]] = 1
    return images, mask


def f32(t):
    return t.detach().to(torch.float32).contiguous()


def model_metadata(model):
    return {
        "config": model.cfg.to_json(),
        "param_order": json.dumps([n for n, _ in model.named_parameters()]),
        "trainable": json.dumps([n for n, _ in trainable_named_parameters(model)]),
    }


def load_checkpoint(path, drop_path_off=True):
    """Checkpoint (official names, or a golden file's `param.*`) -> float32 CAE model.
    Frozen pos embeddings / frozen regressor gammas may be absent: then they are computed."""
    tensors, meta = load_file(path)
    if "config" not in meta:
        raise ValueError(f"{path}: __metadata__ has no 'config' entry")
    cfg = CAEConfig.from_json(meta["config"])
    if drop_path_off:
        cfg = cfg.replace(drop_path_rate=0.0)
    prefix = "param." if meta.get("format") == GOLDEN_FORMAT else ""
    torch.manual_seed(0)
    model = CAE(cfg)
    expected = dict(model.named_parameters())
    given = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    unexpected = sorted(set(given) - set(expected))
    if unexpected:
        raise ValueError(f"{path}: unexpected tensors {unexpected[:5]} (config {cfg.to_json()})")
    for name, p in expected.items():
        if name not in given:
            if p.requires_grad:
                raise ValueError(f"{path}: missing trainable parameter {name!r}")
            continue  # frozen: keep the computed value
        arr = torch.from_numpy(given[name])
        if list(arr.shape) != list(p.shape) or not arr.is_floating_point():
            raise ValueError(f"{path}: {name!r} is {arr.dtype}{list(arr.shape)}, "
                             f"expected float{list(p.shape)}")
        with torch.no_grad():
            p.copy_(arr.to(torch.float32))
    return model


def load_batch(path, cfg):
    tensors, meta = load_file(path)
    prefix = "input." if meta.get("format") == GOLDEN_FORMAT else ""
    for k in ("images", "mask"):
        if prefix + k not in tensors:
            raise ValueError(f"{path}: no tensor {prefix + k!r}")
    images = torch.from_numpy(tensors[prefix + "images"]).to(torch.float32)
    mask = torch.from_numpy(tensors[prefix + "mask"])
    want = [cfg.in_chans, cfg.img_size, cfg.img_size]
    if images.dim() != 4 or list(images.shape[1:]) != want:
        raise ValueError(f"{path}: images {list(images.shape)}, expected [B, {want[0]}, {want[1]}, {want[2]}]")
    if mask.dtype != torch.uint8 or list(mask.shape) != [images.shape[0], cfg.num_patches]:
        raise ValueError(f"{path}: mask {mask.dtype}{list(mask.shape)}, "
                         f"expected uint8[{images.shape[0]}, {cfg.num_patches}]")
    if bool((mask > 1).any()):
        raise ValueError(f"{path}: mask holds values other than 0/1")
    try:
        check_mask(mask.bool(), cfg.num_patches)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    return images, mask


def loss_and_grads(model, images, mask):
    """One forward (with the alignment pass) + backward of `loss` -> (outputs, {name: grad})."""
    model.train()
    model.zero_grad(set_to_none=True)
    out = model(images, mask)
    out["loss"].backward()
    grads = {n: p.grad.detach().clone() for n, p in trainable_named_parameters(model)}
    return out, grads


def make_optimizer(model, lr):
    return torch.optim.AdamW(param_groups(model, WEIGHT_DECAY), lr=lr, betas=BETAS, eps=ADAM_EPS,
                             foreach=False)


def train_steps(model, images, mask, lrs, max_grad_norm):
    """len(lrs) full steps on one batch: forward, backward, clip_grad_norm_, AdamW.
    -> (optimizer, losses before each update, global grad norms before clipping)."""
    model.train()
    opt = make_optimizer(model, lrs[0])
    params = [p for _, p in trainable_named_parameters(model)]
    losses, norms = [], []
    for lr in lrs:
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        out = model(images, mask)
        out["loss"].backward()
        norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        opt.step()
        losses.append(out["loss"].item())
        norms.append(norm.item())
    return opt, losses, norms


def round_sig(x, digits=3):
    return float(f"{x:.{digits - 1}e}")


# ---------------------------------------------------------------------------------------
# generate
# ---------------------------------------------------------------------------------------

def golden_tensors(model32, images, mask_u8, dtype, lrs, max_grad_norm):
    """Everything a golden file holds except the metadata, computed in `dtype`, stored F32.
    -> (tensors, step grad norms)."""
    t = {}
    for n, p in model32.named_parameters():
        t["param." + n] = f32(p)
    t["input.images"] = images.contiguous()
    t["input.mask"] = mask_u8.contiguous()

    mask = mask_u8.bool()
    x = images.to(dtype)
    model = copy.deepcopy(model32).to(dtype)
    out, grads = loss_and_grads(model, x, mask)
    for k in ("loss", "loss_main", "loss_align"):
        t["out." + k] = f32(out[k])
    for n, g in grads.items():
        t["grad." + n] = f32(g)
    for k in ("encoder_out", "align_target", "latent_pred", "pred", "pixel_target"):
        t["act." + k] = f32(out[k])
    cls, mean = model.features(x)
    t["features.cls"], t["features.mean"] = f32(cls), f32(mean)

    model = copy.deepcopy(model32).to(dtype)
    opt, losses, norms = train_steps(model, x, mask, lrs, max_grad_norm)
    t["step.lr"] = torch.tensor(lrs, dtype=torch.float32)
    t["step.loss"] = torch.tensor(losses, dtype=torch.float32)
    t["step.grad_norm"] = torch.tensor(norms, dtype=torch.float32)
    for n, p in trainable_named_parameters(model):
        state = opt.state[p]
        t["after3." + n] = f32(p)
        t["after3.exp_avg." + n] = f32(state["exp_avg"])
        t["after3.exp_avg_sq." + n] = f32(state["exp_avg_sq"])
    return t, norms


def generate_case(name, case, dtype):
    cfg = CAEConfig.from_dict(dict(case["config"], drop_path_rate=0.0))  # parity mode: drop path off
    model32 = build_model(cfg, MODEL_SEED)
    images, mask_u8 = make_batch(cfg, case["batch"], case["masked"], BATCH_SEED)

    # max_grad_norm: half the initial norm (3 significant digits), halved until clipping is
    # active in every one of the steps.
    model = copy.deepcopy(model32).to(dtype)
    _, grads = loss_and_grads(model, images.to(dtype), mask_u8.bool())
    norm0 = torch.norm(torch.stack([g.norm() for g in grads.values()])).item()
    max_grad_norm = round_sig(0.5 * norm0)
    while True:
        tensors, norms = golden_tensors(model32, images, mask_u8, dtype, GOLDEN_LRS, max_grad_norm)
        if all(n > max_grad_norm for n in norms):
            break
        max_grad_norm = round_sig(max_grad_norm / 2)

    meta = model_metadata(model32)
    meta.update({
        "format": GOLDEN_FORMAT,
        "name": name,
        "weight_decay": repr(WEIGHT_DECAY),
        "max_grad_norm": repr(max_grad_norm),
        "betas": json.dumps(list(BETAS)),
        "eps": repr(ADAM_EPS),
        "compute_dtype": str(dtype).replace("torch.", ""),
        "seed": str(MODEL_SEED),
        "batch_seed": str(BATCH_SEED),
        "torch": torch.__version__,
    })
    return tensors, meta


def cmd_generate(args):
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    for name, case in GOLDEN_CASES.items():
        tensors, meta = generate_case(name, case, DTYPES[args.dtype])
        path = os.path.join(args.out, name + ".safetensors")
        save_file(tensors, path, meta)
        print(f"{path}: {os.path.getsize(path)} bytes, loss {tensors['out.loss'].item():.6f}, "
              f"max_grad_norm {meta['max_grad_norm']}, step.grad_norm "
              f"{[round(v, 5) for v in tensors['step.grad_norm'].tolist()]}")


# ---------------------------------------------------------------------------------------
# init / batch / grad
# ---------------------------------------------------------------------------------------

def cmd_init(args):
    cfg = parse_config_arg(args.config)
    model = build_model(cfg, args.seed)
    meta = model_metadata(model)
    meta.update({"format": CHECKPOINT_FORMAT, "seed": str(args.seed)})
    save_file({n: f32(p) for n, p in model.named_parameters()}, args.out, meta)


def cmd_official(args):
    """A checkpoint as the official CAE training code saves it: torch.save of a dict with the
    state dict under "model" (with DistributedDataParallel's "module." prefix), the optimizer's
    state, the epoch and the training args (an argparse.Namespace); and, beside it, the same
    parameters under their official names as safetensors (OUT.safetensors) to compare with."""
    cfg = parse_config_arg(args.config)
    model = build_model(cfg, args.seed)
    opt = make_optimizer(model, 1e-3)
    state = {"module." + k: v for k, v in model.state_dict().items()}
    train_args = argparse.Namespace(model="cae_custom", lr=1e-3, epochs=3, batch_size=64, seed=args.seed)
    torch.save({"model": state, "optimizer": opt.state_dict(), "epoch": 3, "args": train_args}, args.out)
    save_file({n: f32(p) for n, p in model.named_parameters()}, args.out + ".safetensors",
              {"config": cfg.to_json(), "seed": str(args.seed)})


def cmd_batch(args):
    cfg = parse_config_arg(args.config)
    images, mask = make_batch(cfg, args.batch, args.masked, args.seed)
    save_file({"images": images, "mask": mask}, args.out,
              {"config": cfg.to_json(), "seed": str(args.seed), "masked": str(args.masked)})


def grad_tensors(model32, images, mask_u8, dtype):
    model = copy.deepcopy(model32).to(dtype)
    out, grads = loss_and_grads(model, images.to(dtype), mask_u8.bool())
    t = {k: f32(out[k]) for k in ("loss", "loss_main", "loss_align")}
    t.update({n: f32(g) for n, g in grads.items()})
    return t


def cmd_grad(args):
    model = load_checkpoint(args.checkpoint)
    images, mask = load_batch(args.batch, model.cfg)
    t = grad_tensors(model, images, mask, DTYPES[args.dtype])
    save_file(t, args.out, {"config": model.cfg.to_json(), "compute_dtype": args.dtype})


# ---------------------------------------------------------------------------------------
# bench
# ---------------------------------------------------------------------------------------

def cmd_bench(args):
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    cfg = parse_config_arg(args.config)
    if not args.drop_path:
        cfg = cfg.replace(drop_path_rate=0.0)
    masked = args.masked if args.masked is not None else cfg.num_patches // 2
    model = build_model(cfg, 0)
    model.train()
    images, mask_u8 = make_batch(cfg, args.batch, masked, 1)
    mask = mask_u8.bool()
    opt = torch.optim.AdamW(param_groups(model, WEIGHT_DECAY), lr=1.5e-3 * args.batch / 2048,
                            betas=BETAS, eps=ADAM_EPS)
    params = [p for _, p in trainable_named_parameters(model)]
    times = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        out = model(images, mask)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, 3.0)
        opt.step()
        dt = time.perf_counter() - t0
        if i >= args.warmup:
            times.append(dt * 1e3)
    med = statistics.median(times)
    print(json.dumps({
        "impl": "pytorch", "backend": "cpu", "threads": args.threads, "batch": args.batch,
        "img_per_s": round(args.batch / (med / 1e3), 2), "step_ms": round(med, 3),
        "step_ms_all": [round(v, 3) for v in times], "torch": torch.__version__,
        "drop_path": bool(args.drop_path), "masked": masked,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
    }))


# ---------------------------------------------------------------------------------------
# selfcheck
# ---------------------------------------------------------------------------------------

def _max_rel(a, b):
    """max |a - b| / max |b| (0 when both are 0)."""
    a, b = a.double(), b.double()
    denom = b.abs().max().item()
    diff = (a - b).abs().max().item()
    return diff / denom if denom > 0 else diff


def check_layouts():
    g, d = 3, 8
    pe = sincos_position_embedding(g, d)[0].double()
    p = d // 4
    for m in range(g * g):
        r, c = m // g, m % g
        for k in range(p):
            w = 1.0 / 10000 ** (k / p)
            want = [math.sin(r * w), math.cos(r * w), math.sin(c * w), math.cos(c * w)]
            got = [pe[1 + m, j * p + k].item() for j in range(4)]
            assert max(abs(x - y) for x, y in zip(want, got)) < 1e-6, (m, k, want, got)
    assert pe[0].abs().max().item() == 0.0
    imgs = torch.randn(2, 3, 8, 8)
    pt = patchify(imgs, 4)
    for b, m, py, px, c in [(0, 0, 0, 0, 0), (1, 3, 2, 1, 2), (0, 2, 3, 0, 1), (1, 1, 1, 3, 0)]:
        r, col = m // 2, m % 2
        assert pt[b, m, (py * 4 + px) * 3 + c] == imgs[b, c, r * 4 + py, col * 4 + px]
    tgt = pixel_norm_target(imgs, 4, 1e-6)[1, 2].double()
    v = pt[1, 2].double()
    want = (v - v.mean()) / torch.sqrt(((v - v.mean()) ** 2).sum() / (v.numel() - 1) + 1e-6)
    assert (tgt - want).abs().max().item() < 1e-6
    print("layouts: sin-cos rows/cols, (py,px,c) patchify and unbiased pixel norm match the formulas")


def check_gradients():
    """gradcheck (float64) of the whole loss w.r.t. images and all trainable parameters with the
    alignment target held fixed, plus proof that the model's own alignment pass is detached."""
    from torch.nn.utils.stateless import functional_call
    tiny = [
        dict(img_size=8, patch_size=2, in_chans=2, embed_dim=8, depth=2, num_heads=2, mlp_ratio=2.0,
             regressor_depth=2, decoder_depth=1, decoder_num_heads=2, layer_scale_init_value=0.1,
             decoder_layer_scale_init_value=0.1, drop_path_rate=0.0),
        dict(img_size=8, patch_size=2, in_chans=1, embed_dim=8, depth=1, num_heads=4, mlp_ratio=1.5,
             regressor_depth=2, decoder_depth=2, decoder_num_heads=2, layer_scale_init_value=0.0,
             decoder_layer_scale_init_value=0.0, align_loss_weight=1.5, drop_path_rate=0.0),
    ]
    for i, c in enumerate(tiny):
        cfg = CAEConfig.from_dict(c)
        model = build_model(cfg, 10 + i).double()
        g = torch.Generator().manual_seed(20 + i)
        with torch.no_grad():  # move off the special init point (zero biases, unit LN weights)
            for _, p in trainable_named_parameters(model):
                p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=torch.float64))
        images, mask_u8 = make_batch(cfg, 2, 6, 30 + i)
        images, mask = images.double(), mask_u8.bool()
        named = trainable_named_parameters(model)
        names = [n for n, _ in named]
        with torch.no_grad():
            target = model.encoder(images, mask)[:, 1:]

        def loss_fn(imgs, *flat):
            out = functional_call(model, dict(zip(names, flat)), (imgs, mask), {"align_target": target})
            return out["loss"]

        inputs = (images.clone().requires_grad_(True),) + tuple(p.detach().clone().requires_grad_(True)
                                                              for _, p in named)
        n_el = sum(t.numel() for t in inputs)
        t0 = time.time()
        ok = torch.autograd.gradcheck(loss_fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)
        print(f"gradcheck tiny[{i}] (layer scales {cfg.layer_scale_init_value}/"
              f"{cfg.decoder_layer_scale_init_value}): {ok} over {n_el} inputs "
              f"({len(names)} parameter tensors + images), {time.time() - t0:.1f} s")

        # The model's internal alignment pass must not propagate gradients:
        # (a) its grads equal those with T passed in as a constant;
        # (b) letting gradients flow through T changes exactly the encoder's grads.
        _, g_model = loss_and_grads(model, images, mask)
        model.zero_grad(set_to_none=True)
        model(images, mask, align_target=target)["loss"].backward()
        g_fixed = {n: p.grad.clone() for n, p in named}
        model.zero_grad(set_to_none=True)
        attached = model.encoder(images, mask)[:, 1:]
        model(images, mask, align_target=attached)["loss"].backward()
        g_attached = {n: p.grad.clone() for n, p in named}
        d_fixed = max((g_model[n] - g_fixed[n]).abs().max().item() for n in names)
        d_enc = max((g_model[n] - g_attached[n]).abs().max().item() for n in names if n.startswith("encoder."))
        d_rest = max((g_model[n] - g_attached[n]).abs().max().item() for n in names
                     if not n.startswith("encoder."))
        assert d_fixed == 0.0 and d_enc > 1e-6 and d_rest == 0.0, (d_fixed, d_enc, d_rest)
        print(f"  detached target: |g_model - g_fixedT| = {d_fixed}, if T were attached the encoder "
              f"grads would change by up to {d_enc:.3e}, others by {d_rest}")
        zero = [n for n in names if g_model[n].abs().max().item() < 1e-12]
        print(f"  parameters with (mathematically) zero gradient: {zero}")


def check_param_counts():
    cfg = CAEConfig.from_dict(dict(
        img_size=224, patch_size=16, in_chans=3, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0,
        regressor_depth=4, decoder_depth=4, decoder_num_heads=12, layer_scale_init_value=0.1,
        decoder_layer_scale_init_value=0.1))
    model = CAE(cfg)

    def count(prefix, trainable):
        return sum(p.numel() for n, p in model.named_parameters()
                   if n.startswith(prefix) and p.requires_grad == trainable)
    enc, enc_frozen = count("encoder.", True), count("encoder.", False)
    reg, dec = count("regresser.", True), count("decoder.", True)
    mask_tok, rd = count("mask_token", True), count("rd_pos_embed", False)
    total = sum(p.numel() for _, p in trainable_named_parameters(model))
    dec_spec = 34_655_744 - (8192 - 768) * 769
    print(f"ViT-B params: encoder {enc:,} trainable + {enc_frozen:,} frozen (spec 85,656,576 + 151,296); "
          f"regresser {reg:,} (spec 28,368,384); decoder {dec:,} (spec 34,655,744 - (8192-768)*769 = "
          f"{dec_spec:,}); mask_token {mask_tok}; rd_pos_embed {rd:,} frozen; total trainable {total:,} "
          f"(spec 148,681,472 - {(8192 - 768) * 769:,} = {148_681_472 - (8192 - 768) * 769:,})")
    assert (enc, enc_frozen, reg, dec) == (85_656_576, 151_296, 28_368_384, dec_spec)
    assert total == 148_681_472 - (8192 - 768) * 769


def check_goldens(golden_dir, tmp_dir):
    """For each golden: (1) init + batch + grad CLI reproduce its params, inputs and gradients
    bit for bit; (2) the same pipeline in float32 vs the golden (float64) = tolerance guide."""
    for name, case in GOLDEN_CASES.items():
        path = os.path.join(golden_dir, name + ".safetensors")
        if not os.path.exists(path):
            print(f"{path}: missing, run `generate` first")
            continue
        gold, meta = load_file(path)
        cfg = CAEConfig.from_json(meta["config"])
        ckpt, inp, out = (os.path.join(tmp_dir, f"{name}.{k}.safetensors") for k in ("ckpt", "batch", "grad"))
        cfg_json = cfg.to_json()
        run_cli(["init", "--config", cfg_json, "--seed", meta["seed"], "--out", ckpt])
        run_cli(["batch", "--config", cfg_json, "--batch", str(case["batch"]), "--masked",
                 str(case["masked"]), "--seed", meta["batch_seed"], "--out", inp])
        run_cli(["grad", "--checkpoint", ckpt, "--batch", inp, "--out", out, "--dtype", meta["compute_dtype"]])
        ck, _ = load_file(ckpt)
        bt, _ = load_file(inp)
        gr, _ = load_file(out)
        same_params = all((ck[n] == gold["param." + n]).all() for n in json.loads(meta["param_order"]))
        same_inputs = (bt["images"] == gold["input.images"]).all() and (bt["mask"] == gold["input.mask"]).all()
        worst = max(abs(float(gr[k]) - float(gold["out." + k])) for k in ("loss", "loss_main", "loss_align"))
        trainable = json.loads(meta["trainable"])
        worst_g = max(float(abs(gr[n] - gold["grad." + n]).max()) for n in trainable if "norm1_k.bias" not in n)
        noise_g = max([float(abs(gr[n] - gold["grad." + n]).max()) for n in trainable if "norm1_k.bias" in n] or [0.0])
        print(f"{name}: {os.path.getsize(path):,} bytes; init/batch/grad CLI vs golden: params identical "
              f"{bool(same_params)}, inputs identical {bool(same_inputs)}, max |dloss| {worst}, "
              f"max |dgrad| {worst_g} (norm1_k.bias, whose true gradient is 0: {noise_g:.1e})")
        assert same_params and same_inputs and worst == 0.0 and worst_g == 0.0 and noise_g < 1e-12

        # The golden file itself loads as a checkpoint (param.* prefix); rerun it in float32.
        model32 = load_checkpoint(path)
        images = torch.from_numpy(gold["input.images"])
        mask_u8 = torch.from_numpy(gold["input.mask"])
        t32, _ = golden_tensors(model32, images, mask_u8, torch.float32, tuple(gold["step.lr"].tolist()),
                                float(meta["max_grad_norm"]))
        groups = {}
        for k, v in t32.items():
            if k.startswith(("param.", "input.")):
                continue
            grp = k.split(".")[0] if not k.startswith("after3.exp") else ".".join(k.split(".")[:2])
            key = k[len(grp) + 1:]
            if "norm1_k.bias" in key:
                continue  # zero true gradient: values are rounding noise, reported separately below
            err = _max_rel(v, torch.from_numpy(gold[k]))
            if err > groups.get(grp, (0.0, ""))[0]:
                groups[grp] = (err, key)
        print(f"  float32 pipeline vs float64 golden, worst max|a-b|/max|b| per group: " +
              ", ".join(f"{g} {e:.1e} ({k})" for g, (e, k) in sorted(groups.items())))
        noise = [k for k in gold if "norm1_k.bias" in k and k.startswith(("grad.", "after3."))
                 and not k.startswith("after3.exp_avg_sq")]
        if noise:
            print("  norm1_k.bias (zero true gradient): float64 golden max|v| " +
                  f"{max(float(abs(gold[k]).max()) for k in noise):.1e}, float32 run max|v| " +
                  f"{max(float(t32[k].abs().max()) for k in noise):.1e}")


def check_numpy_forward(golden_dir):
    """An independent naive numpy forward (numpy_forward.py) reproduces each golden's losses."""
    import numpy as np
    from numpy_forward import cae_losses
    for name in GOLDEN_CASES:
        path = os.path.join(golden_dir, name + ".safetensors")
        if not os.path.exists(path):
            continue
        gold, meta = load_file(path)
        cfg = json.loads(meta["config"])
        P = {k[len("param."):]: v.astype(np.float64) for k, v in gold.items() if k.startswith("param.")}
        got = cae_losses(P, cfg, gold["input.images"].astype(np.float64), gold["input.mask"])
        want = [float(gold["out." + k]) for k in ("loss", "loss_main", "loss_align")]
        rel = max(abs(a - b) / abs(b) for a, b in zip(got, want))
        print(f"{name}: naive numpy forward vs golden losses {[round(v, 7) for v in got]}, max rel diff {rel:.1e}")
        assert rel < 1e-6


def run_cli(argv):
    args = build_parser().parse_args(argv)
    args.func(args)


def cmd_selfcheck(args):
    import tempfile
    check_layouts()
    check_param_counts()
    check_gradients()
    with tempfile.TemporaryDirectory() as tmp:
        check_goldens(args.goldens, tmp)
    check_numpy_forward(args.goldens)
    print("selfcheck: all passed")


# ---------------------------------------------------------------------------------------

def build_parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("generate", help="write the golden files")
    p.add_argument("--out", default=os.path.join(HERE, "goldens"))
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float64",
                   help="compute precision (stored as F32); default float64")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("init", help="write a freshly initialized checkpoint")
    p.add_argument("--config", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("official", help="write a checkpoint in the official training code's .pth layout")
    p.add_argument("--config", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_official)

    p = sub.add_parser("batch", help="write random images and masks")
    p.add_argument("--config", required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--masked", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("grad", help="losses and gradients for a checkpoint and a batch")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--batch", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float64")
    p.set_defaults(func=cmd_grad)

    p = sub.add_parser("bench", help="time full training steps")
    p.add_argument("--config", required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--masked", type=int, default=None, help="masked patches per image (default N//2)")
    p.add_argument("--drop-path", action="store_true", help="keep the config's drop_path_rate")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("selfcheck", help="gradcheck, parameter counts, golden consistency")
    p.add_argument("--goldens", default=os.path.join(HERE, "goldens"))
    p.set_defaults(func=cmd_selfcheck)
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
