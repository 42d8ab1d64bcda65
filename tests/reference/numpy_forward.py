"""A second, deliberately naive CAE forward in float64 numpy (per image, per head, explicit
index arithmetic), used by `selfcheck` to cross-check the PyTorch model on the goldens.
Works from a flat dict of parameters under their official names."""

import math

import numpy as np


def _ln(x, w, b, eps):  # [T,D] -> [T,D]
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)  # biased, as LayerNorm
    return (x - mu) / np.sqrt(var + eps) * w + b


def _gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _softmax(s):
    s = s - s.max(axis=-1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=-1, keepdims=True)


def _heads_attention(q, k, v, heads):  # q [Tq,D], k/v [Tk,D] -> [Tq,D]
    D = q.shape[1]
    hd = D // heads
    out = np.zeros_like(q)
    for h in range(heads):
        sl = slice(h * hd, (h + 1) * hd)
        a = _softmax((q[:, sl] * hd ** -0.5) @ k[:, sl].T)
        out[:, sl] = a @ v[:, sl]
    return out


def _mlp(P, pre, x):
    h = _gelu(x @ P[pre + "fc1.weight"].T + P[pre + "fc1.bias"])
    return h @ P[pre + "fc2.weight"].T + P[pre + "fc2.bias"]


def _block(P, pre, x, heads, eps):
    D = x.shape[1]
    h = _ln(x, P[pre + "norm1.weight"], P[pre + "norm1.bias"], eps)
    W = P[pre + "attn.qkv.weight"]                   # rows [q | k | v]
    q = h @ W[:D].T + P[pre + "attn.q_bias"]
    k = h @ W[D:2 * D].T
    v = h @ W[2 * D:].T + P[pre + "attn.v_bias"]
    a = _heads_attention(q, k, v, heads) @ P[pre + "attn.proj.weight"].T + P[pre + "attn.proj.bias"]
    x = x + P.get(pre + "gamma_1", 1.0) * a
    m = _mlp(P, pre + "mlp.", _ln(x, P[pre + "norm2.weight"], P[pre + "norm2.bias"], eps))
    return x + P.get(pre + "gamma_2", 1.0) * m


def _regressor_block(P, pre, q, zv, pos_m, pos_v, heads, eps):
    kv = np.concatenate([zv, q])
    pkv = np.concatenate([pos_v, pos_m])
    xq = _ln(q + pos_m, P[pre + "norm1_q.weight"], P[pre + "norm1_q.bias"], eps)
    xk = _ln(kv + pkv, P[pre + "norm1_k.weight"], P[pre + "norm1_k.bias"], eps)
    xv = _ln(kv, P[pre + "norm1_v.weight"], P[pre + "norm1_v.bias"], eps)
    c = pre + "cross_attn."
    a = _heads_attention(xq @ P[c + "q.weight"].T + P[c + "q_bias"], xk @ P[c + "k.weight"].T,
                         xv @ P[c + "v.weight"].T + P[c + "v_bias"], heads)
    a = a @ P[c + "proj.weight"].T + P[c + "proj.bias"]
    h = _ln(q + P[pre + "gamma_1_cross"] * a, P[pre + "norm2_cross.weight"], P[pre + "norm2_cross.bias"], eps)
    return h + P[pre + "gamma_2_cross"] * _mlp(P, pre + "mlp_cross.", h)


def _encode(P, cfg, img, patches):  # img [C,H,W], patches: list of indices -> [1+len, D]
    p, g, eps = cfg["patch_size"], cfg["img_size"] // cfg["patch_size"], cfg["layer_norm_eps"]
    Wc, bc = P["encoder.patch_embed.proj.weight"], P["encoder.patch_embed.proj.bias"]
    rows = [P["encoder.cls_token"][0, 0]]
    for m in patches:
        r, c = divmod(m, g)
        window = img[:, r * p:(r + 1) * p, c * p:(c + 1) * p]          # [C,p,p]
        rows.append(np.tensordot(Wc, window, axes=3) + bc + P["encoder.pos_embed"][0, 1 + m])
    x = np.stack(rows)
    for i in range(cfg["depth"]):
        x = _block(P, f"encoder.blocks.{i}.", x, cfg["num_heads"], eps)
    return _ln(x, P["encoder.norm.weight"], P["encoder.norm.bias"], eps)


def cae_losses(P, cfg, images, mask):
    """P: name -> float64 array; images [B,C,H,W]; mask [B,N] (1 = masked) -> (loss, main, align)."""
    p, eps, heads = cfg["patch_size"], cfg["layer_norm_eps"], cfg["decoder_num_heads"]
    g = cfg["img_size"] // p
    se_main = se_align = 0.0
    n_main = n_align = 0
    for b in range(images.shape[0]):
        vis = [m for m in range(g * g) if mask[b, m] == 0]
        msk = [m for m in range(g * g) if mask[b, m] == 1]
        zv = _encode(P, cfg, images[b], vis)[1:]
        target_latent = _encode(P, cfg, images[b], msk)[1:]
        pos_v = P["rd_pos_embed"][0, [1 + m for m in vis]]
        pos_m = P["rd_pos_embed"][0, [1 + m for m in msk]]
        q = np.repeat(P["mask_token"][0], len(msk), axis=0)
        for j in range(cfg["regressor_depth"]):
            q = _regressor_block(P, f"regresser.regressor_blocks.{j}.", q, zv, pos_m, pos_v, heads, eps)
        latent = _ln(q, P["regresser.norm.weight"], P["regresser.norm.bias"], eps)
        x = latent + pos_m
        for k in range(cfg["decoder_depth"]):
            x = _block(P, f"decoder.decoder_blocks.{k}.", x, heads, eps)
        pred = _ln(x, P["decoder.norm.weight"], P["decoder.norm.bias"], eps) @ P["decoder.head.weight"].T \
            + P["decoder.head.bias"]
        for t, m in enumerate(msk):
            r, c = divmod(m, g)
            patch = images[b, :, r * p:(r + 1) * p, c * p:(c + 1) * p]   # [C,py,px]
            vec = patch.transpose(1, 2, 0).reshape(-1)                  # (py, px, c)
            tgt = (vec - vec.mean()) / math.sqrt(vec.var(ddof=1) + cfg["norm_pix_eps"])
            se_main += ((pred[t] - tgt) ** 2).sum()
            n_main += vec.size
        se_align += ((latent - target_latent) ** 2).sum()
        n_align += latent.size
    main, align = se_main / n_main, se_align / n_align
    return main + cfg["align_loss_weight"] * align, main, align
