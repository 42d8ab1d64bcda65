"""CAE v1 (Context Autoencoder, Chen et al. 2022) with the per-patch-normalized pixel target.

Plain PyTorch, of the computation docs/cae.md describes; the section names in comments are that
document's. Shapes: B batch, N patches,
Nv visible, Nm masked, D embed dim, H heads, hd head dim, P = patch*patch*in_chans.
"""

import json
import math
from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------
# Configuration (official argument names)
# ---------------------------------------------------------------------------------------

_REQUIRED = ("img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads", "mlp_ratio",
             "regressor_depth", "decoder_depth", "decoder_num_heads", "layer_scale_init_value",
             "decoder_layer_scale_init_value")


@dataclass(frozen=True)
class CAEConfig:
    img_size: int
    patch_size: int
    in_chans: int
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float
    regressor_depth: int
    decoder_depth: int
    decoder_num_heads: int                  # heads of the regressor AND the decoder
    layer_scale_init_value: float           # encoder; 0 = no gamma parameters
    decoder_layer_scale_init_value: float   # regressor (0 = frozen ones) and decoder (0 = none)
    decoder_embed_dim: int = 0              # 0 in the constructor = embed_dim; must equal it
    align_loss_weight: float = 2.0
    drop_path_rate: float = 0.1
    target: str = "pixel_norm"
    norm_pix_eps: float = 1e-6
    layer_norm_eps: float = 1e-6

    def __post_init__(self):
        if self.decoder_embed_dim == 0:
            object.__setattr__(self, "decoder_embed_dim", self.embed_dim)
        self._validate()

    @property
    def grid(self):
        return self.img_size // self.patch_size

    @property
    def num_patches(self):
        return self.grid * self.grid

    @property
    def patch_dim(self):  # P = p*p*C, the pixel head's width
        return self.patch_size * self.patch_size * self.in_chans

    @property
    def mlp_hidden(self):
        return int(self.embed_dim * self.mlp_ratio)

    def _validate(self):
        def need(ok, what):
            if not ok:
                raise ValueError(f"config: {what} (config: {self.to_json()})")
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type is int or f.type == "int":
                need(isinstance(v, int) and not isinstance(v, bool), f"{f.name} must be an integer, got {v!r}")
            elif f.type is float or f.type == "float":
                need(isinstance(v, (int, float)) and not isinstance(v, bool), f"{f.name} must be a number, got {v!r}")
        for k in ("img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads",
                  "regressor_depth", "decoder_depth", "decoder_num_heads"):
            need(getattr(self, k) >= 1, f"{k} must be >= 1, got {getattr(self, k)}")
        need(self.img_size % self.patch_size == 0,
             f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        need(self.embed_dim % 4 == 0, f"embed_dim {self.embed_dim} must be a multiple of 4 (2-D sin-cos)")
        need(self.embed_dim % self.num_heads == 0,
             f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        need(self.embed_dim % self.decoder_num_heads == 0,
             f"embed_dim {self.embed_dim} is not divisible by decoder_num_heads {self.decoder_num_heads}")
        need(self.decoder_embed_dim == self.embed_dim,
             f"decoder_embed_dim {self.decoder_embed_dim} != embed_dim {self.embed_dim} "
             "(the encoder_to_regresser projection is not supported)")
        need(self.mlp_ratio > 0 and self.mlp_hidden >= 1, f"mlp_ratio {self.mlp_ratio} gives no MLP hidden units")
        need(self.layer_scale_init_value >= 0 and self.decoder_layer_scale_init_value >= 0,
             "layer scale init values must be >= 0")
        need(0 <= self.drop_path_rate < 1, f"drop_path_rate {self.drop_path_rate} must be in [0, 1)")
        need(self.target == "pixel_norm", f"target {self.target!r}: only 'pixel_norm' is implemented")
        need(self.patch_dim >= 2, "patch_size^2 * in_chans must be >= 2 (unbiased per-patch variance)")

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"config: unknown keys {unknown}; known keys are {sorted(known)}")
        missing = [k for k in _REQUIRED if k not in d]
        if missing:
            raise ValueError(f"config: missing required keys {missing}")
        d = dict(d)
        for k in ("mlp_ratio", "layer_scale_init_value", "decoder_layer_scale_init_value",
                  "align_loss_weight", "drop_path_rate", "norm_pix_eps", "layer_norm_eps"):
            if k in d and isinstance(d[k], int) and not isinstance(d[k], bool):
                d[k] = float(d[k])
        return cls(**d)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))

    def to_dict(self):
        return asdict(self)

    def to_json(self):
        return json.dumps(asdict(self), sort_keys=True)

    def replace(self, **changes):
        return replace(self, **changes)


# ---------------------------------------------------------------------------------------
# Fixed 2-D sin-cos position embedding (docs/cae.md, "Patch embedding and positions")
# ---------------------------------------------------------------------------------------

def sincos_position_embedding(grid, dim):
    """-> [1, 1+grid*grid, dim] float32, row 0 (cls) = 0.

    For patch m: r = m // grid, c = m % grid, P = dim/4, omega_k = 1/10000^(k/P):
    pe[m, 0:P] = sin(r*omega), [P:2P] = cos(r*omega), [2P:3P] = sin(c*omega), [3P:4P] = cos(c*omega).
    Computed in float64 and rounded once to float32.
    """
    p = dim // 4
    omega = 1.0 / (10000.0 ** (torch.arange(p, dtype=torch.float64) / p))      # [P]
    m = torch.arange(grid * grid)
    r = (m // grid).to(torch.float64)[:, None] * omega                           # [N,P]
    c = (m % grid).to(torch.float64)[:, None] * omega                            # [N,P]
    pe = torch.cat((r.sin(), r.cos(), c.sin(), c.cos()), dim=1)                  # [N,D]
    pe = torch.cat((torch.zeros(1, dim, dtype=torch.float64), pe), dim=0)        # [1+N,D]
    return pe.to(torch.float32)[None]


# ---------------------------------------------------------------------------------------
# Building blocks (docs/cae.md, "Transformer block")
# ---------------------------------------------------------------------------------------

class DropPath(nn.Module):
    """Stochastic depth: each sample's branch is kept with prob 1-p and then scaled by 1/(1-p)."""

    def __init__(self, p):
        super().__init__()
        self.p = float(p)

    def forward(self, x):
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class Mlp(nn.Module):
    """fc1 -> exact (erf) GELU -> fc2: [.., D] -> [.., D]."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def multi_head_attention(q, k, v, num_heads):
    """softmax(q k^T * hd^-0.5) v per head.  q [B,Nq,D], k/v [B,Nk,D] -> [B,Nq,D].

    Channel d of q/k/v belongs to head d // hd (channels ordered [head] x [head_dim]).
    """
    B, Nq, D = q.shape
    Nk = k.shape[1]
    hd = D // num_heads
    q = q.reshape(B, Nq, num_heads, hd).transpose(1, 2) * hd ** -0.5   # [B,H,Nq,hd]
    k = k.reshape(B, Nk, num_heads, hd).transpose(1, 2)                # [B,H,Nk,hd]
    v = v.reshape(B, Nk, num_heads, hd).transpose(1, 2)                # [B,H,Nk,hd]
    attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)                   # [B,H,Nq,Nk]
    return (attn @ v).transpose(1, 2).reshape(B, Nq, D)


class Attention(nn.Module):
    """BEiT self-attention: fused qkv Linear(D, 3D, bias=False) + q_bias, v_bias (k bias = 0).

    qkv output channels are ordered [q|k|v] x [head] x [head_dim].
    """

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):  # [B,N,D] -> [B,N,D]
        bias = torch.cat((self.q_bias, torch.zeros_like(self.q_bias), self.v_bias))
        q, k, v = F.linear(x, self.qkv.weight, bias).chunk(3, dim=-1)   # 3 x [B,N,D]
        return self.proj(multi_head_attention(q, k, v, self.num_heads))


class Block(nn.Module):
    """Pre-norm transformer block (encoder and decoder):
        x = x + DropPath(gamma_1 * Attn(LN1(x)))
        x = x + DropPath(gamma_2 * MLP(LN2(x)))
    gamma_1/gamma_2 exist only when layer_scale > 0 (else plain residual).
    """

    def __init__(self, dim, num_heads, mlp_hidden, layer_scale, drop_path, eps):
        super().__init__()
        if layer_scale > 0:
            self.gamma_1 = nn.Parameter(torch.full((dim,), float(layer_scale)))
            self.gamma_2 = nn.Parameter(torch.full((dim,), float(layer_scale)))
        else:
            self.gamma_1 = self.gamma_2 = None
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp_hidden)
        self.drop_path = DropPath(drop_path)

    def forward(self, x):  # [B,N,D] -> [B,N,D]
        a = self.attn(self.norm1(x))
        x = x + self.drop_path(a if self.gamma_1 is None else self.gamma_1 * a)
        m = self.mlp(self.norm2(x))
        return x + self.drop_path(m if self.gamma_2 is None else self.gamma_2 * m)


class CrossAttention(nn.Module):
    """Regressor cross-attention: separate q/k/v Linear(D, D, bias=False) + q_bias, v_bias (k bias 0)."""

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, xq, xk, xv):  # xq [B,Nq,D], xk/xv [B,Nk,D] -> [B,Nq,D]
        q = F.linear(xq, self.q.weight, self.q_bias)
        k = F.linear(xk, self.k.weight)
        v = F.linear(xv, self.v.weight, self.v_bias)
        return self.proj(multi_head_attention(q, k, v, self.num_heads))


class RegressorBlock(nn.Module):
    """Latent contextual regressor block (docs/cae.md, "Latent contextual regressor"), q = current mask queries [B,Nm,D]:
        KV = concat(Zv, q)                    [B,Nv+Nm,D]  (visible first, then current queries)
        Q' = norm1_q(q + pos_m);  K' = norm1_k(KV + concat(pos_v, pos_m));  V' = norm1_v(KV)
        h  = q + DropPath(gamma_1_cross * CrossAttn(Q', K', V'))
        h  = norm2_cross(h)                   (post-norm on the residual stream)
        q  = h + DropPath(gamma_2_cross * MLP(h))
    gamma_*_cross always exist; layer_scale 0 makes them frozen ones.
    """

    def __init__(self, dim, num_heads, mlp_hidden, layer_scale, drop_path, eps):
        super().__init__()
        if layer_scale > 0:
            self.gamma_1_cross = nn.Parameter(torch.full((dim,), float(layer_scale)))
            self.gamma_2_cross = nn.Parameter(torch.full((dim,), float(layer_scale)))
        else:
            self.gamma_1_cross = nn.Parameter(torch.ones(dim), requires_grad=False)
            self.gamma_2_cross = nn.Parameter(torch.ones(dim), requires_grad=False)
        self.norm1_q = nn.LayerNorm(dim, eps=eps)
        self.norm1_k = nn.LayerNorm(dim, eps=eps)
        self.norm1_v = nn.LayerNorm(dim, eps=eps)
        self.norm2_cross = nn.LayerNorm(dim, eps=eps)
        self.cross_attn = CrossAttention(dim, num_heads)
        self.mlp_cross = Mlp(dim, mlp_hidden)
        self.drop_path = DropPath(drop_path)

    def forward(self, q, zv, pos_m, pos_v):  # q [B,Nm,D], zv [B,Nv,D] -> [B,Nm,D]
        kv = torch.cat((zv, q), dim=1)                                  # [B,Nv+Nm,D]
        pos_kv = torch.cat((pos_v, pos_m), dim=1)                       # [B,Nv+Nm,D]
        a = self.cross_attn(self.norm1_q(q + pos_m), self.norm1_k(kv + pos_kv), self.norm1_v(kv))
        h = self.norm2_cross(q + self.drop_path(self.gamma_1_cross * a))
        return h + self.drop_path(self.gamma_2_cross * self.mlp_cross(h))


def _drop_path_rates(rate, depth):
    """Linearly spaced 0..rate over one stack's depth (docs/cae.md, "Stochastic depth")."""
    return [float(x) for x in torch.linspace(0, rate, depth, dtype=torch.float64)]


# ---------------------------------------------------------------------------------------
# Encoder, regressor, decoder (sections 1.2-1.8)
# ---------------------------------------------------------------------------------------

class PatchEmbed(nn.Module):
    """Conv2d(C, D, kernel=stride=patch) with bias: [B,C,H,W] -> [B,N,D], N row-major over the grid."""

    def __init__(self, in_chans, dim, patch):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class Encoder(nn.Module):
    """ViT encoder on cls + a subset of patches (ascending patch index), ending in encoder.norm."""

    def __init__(self, cfg):
        super().__init__()
        D = cfg.embed_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(sincos_position_embedding(cfg.grid, D), requires_grad=False)
        self.patch_embed = PatchEmbed(cfg.in_chans, D, cfg.patch_size)
        self.blocks = nn.ModuleList(
            Block(D, cfg.num_heads, cfg.mlp_hidden, cfg.layer_scale_init_value, dp, cfg.layer_norm_eps)
            for dp in _drop_path_rates(cfg.drop_path_rate, cfg.depth))
        self.norm = nn.LayerNorm(D, eps=cfg.layer_norm_eps)

    def forward(self, images, keep=None):
        """images [B,C,H,W], keep bool [B,N] (same count K per row; None = all) -> [B,1+K,D]."""
        x = self.patch_embed(images) + self.pos_embed[:, 1:]            # [B,N,D]
        B, _, D = x.shape
        if keep is not None:
            x = x[keep].reshape(B, -1, D)                               # [B,K,D] ascending patch index
        cls = self.cls_token.expand(B, -1, -1)                          # cls position row is zero
        x = torch.cat((cls, x), dim=1)                                  # [B,1+K,D]
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


class Regressor(nn.Module):
    """regressor_depth RegressorBlocks, then regresser.norm: -> latent prediction [B,Nm,D]."""

    def __init__(self, cfg):
        super().__init__()
        D = cfg.embed_dim
        self.regressor_blocks = nn.ModuleList(
            RegressorBlock(D, cfg.decoder_num_heads, cfg.mlp_hidden, cfg.decoder_layer_scale_init_value,
                           dp, cfg.layer_norm_eps)
            for dp in _drop_path_rates(cfg.drop_path_rate, cfg.regressor_depth))
        self.norm = nn.LayerNorm(D, eps=cfg.layer_norm_eps)

    def forward(self, q, zv, pos_m, pos_v):  # q [B,Nm,D], zv [B,Nv,D] -> [B,Nm,D]
        for blk in self.regressor_blocks:
            q = blk(q, zv, pos_m, pos_v)
        return self.norm(q)


class Decoder(nn.Module):
    """(latent + pos_m) -> decoder_depth self-attention Blocks over the masked tokens only
    -> decoder.norm -> decoder.head Linear(D, p*p*C): -> [B,Nm,P]."""

    def __init__(self, cfg):
        super().__init__()
        D = cfg.embed_dim
        self.decoder_blocks = nn.ModuleList(
            Block(D, cfg.decoder_num_heads, cfg.mlp_hidden, cfg.decoder_layer_scale_init_value, dp,
                  cfg.layer_norm_eps)
            for dp in _drop_path_rates(cfg.drop_path_rate, cfg.decoder_depth))
        self.norm = nn.LayerNorm(D, eps=cfg.layer_norm_eps)
        self.head = nn.Linear(D, cfg.patch_dim)

    def forward(self, latent, pos_m):  # [B,Nm,D] -> [B,Nm,P]
        x = latent + pos_m
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.head(self.norm(x))


# ---------------------------------------------------------------------------------------
# Pixel target (Part 1 item 2, section 6) and the full model
# ---------------------------------------------------------------------------------------

def patchify(images, patch):
    """[B,C,H,W] -> [B,N,p*p*C], patch vector in (py, px, c) order, patches row-major."""
    B, C, H, W = images.shape
    g = H // patch
    x = images.reshape(B, C, g, patch, g, patch)                        # b c gr py gc px
    x = x.permute(0, 2, 4, 3, 5, 1)                                     # b gr gc py px c
    return x.reshape(B, g * g, patch * patch * C)


def pixel_norm_target(images, patch, eps):
    """Per-patch (x - mean) / sqrt(var + eps), unbiased variance: -> [B,N,P]."""
    x = patchify(images, patch)
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, unbiased=True, keepdim=True)
    return (x - mean) / (var + eps).sqrt()


def check_mask(mask, num_patches):
    """mask bool [B,N], True = masked; same count Nm in every row, 1 <= Nm <= N-1. -> Nm."""
    if mask.dim() != 2 or mask.shape[1] != num_patches:
        raise ValueError(f"mask has shape {list(mask.shape)}, expected [B, {num_patches}]")
    counts = mask.sum(dim=1)
    nm = int(counts[0])
    if not bool((counts == nm).all()):
        raise ValueError(f"masked counts differ between images: {counts.tolist()} (must be equal)")
    if not 1 <= nm <= num_patches - 1:
        raise ValueError(f"{nm} of {num_patches} patches masked; need 1..{num_patches - 1}")
    return nm


class CAE(nn.Module):
    """CAE v1 pretraining model; state_dict order: rd_pos_embed, mask_token, encoder, regresser, decoder."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        D = cfg.embed_dim
        self.rd_pos_embed = nn.Parameter(sincos_position_embedding(cfg.grid, D), requires_grad=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, D))
        self.encoder = Encoder(cfg)
        self.regresser = Regressor(cfg)  # official spelling
        self.decoder = Decoder(cfg)

    def forward(self, images, mask, align_target=None):
        """images [B,C,H,W]; mask bool [B,N] (True = masked).

        align_target: None = compute T with the current encoder under no_grad (as CAE does);
        a tensor [B,Nm,D] = use it as the fixed target (for gradient checks).
        Returns a dict of losses and intermediate tensors.
        """
        cfg = self.cfg
        B = images.shape[0]
        D = cfg.embed_dim
        nm = check_mask(mask, cfg.num_patches)

        z = self.encoder(images, ~mask)                                 # [B,1+Nv,D]
        zv = z[:, 1:]                                                   # cls output discarded (v1)
        if align_target is None:
            with torch.no_grad():                                       # alignment target ("Alignment branch")
                align_target = self.encoder(images, mask)[:, 1:]        # [B,Nm,D]

        pos = self.rd_pos_embed[:, 1:].expand(B, -1, -1)                # [B,N,D]
        pos_v = pos[~mask].reshape(B, -1, D)                            # [B,Nv,D]
        pos_m = pos[mask].reshape(B, -1, D)                             # [B,Nm,D]
        queries = self.mask_token.expand(B, nm, -1)                     # [B,Nm,D]
        latent = self.regresser(queries, zv, pos_m, pos_v)              # [B,Nm,D]
        pred = self.decoder(latent, pos_m)                              # [B,Nm,P]

        target_all = pixel_norm_target(images, cfg.patch_size, cfg.norm_pix_eps)   # [B,N,P]
        target = target_all[mask].reshape(B, nm, cfg.patch_dim)        # [B,Nm,P]

        loss_main = F.mse_loss(pred, target)                            # mean over B*Nm*P
        loss_align = F.mse_loss(latent, align_target)                   # mean over B*Nm*D
        loss = loss_main + cfg.align_loss_weight * loss_align
        return {"loss": loss, "loss_main": loss_main, "loss_align": loss_align,
                "encoder_out": z, "align_target": align_target, "latent_pred": latent,
                "pred": pred, "pixel_target": target}

    @torch.no_grad()
    def features(self, images):
        """Encoder on all patches (no mask): -> (cls [B,D], mean of patch tokens [B,D]), after encoder.norm."""
        x = self.encoder(images, None)                                  # [B,1+N,D]
        return x[:, 0], x[:, 1:].mean(dim=1)


# ---------------------------------------------------------------------------------------
# Initialization and optimizer groups (docs/cae.md, "Initialization", "Optimizer")
# ---------------------------------------------------------------------------------------

def init_weights(model):
    """xavier_uniform for every nn.Linear (fused qkv as one [3D,D] matrix), biases 0; LN 1/0;
    patch conv weight trunc_normal(0.02, +-0.02), conv bias 0; cls/mask tokens trunc_normal(0.02, +-0.02);
    q_bias/v_bias 0 and gammas at their init values (set by the constructors)."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    conv = model.encoder.patch_embed.proj
    nn.init.trunc_normal_(conv.weight, mean=0.0, std=0.02, a=-0.02, b=0.02)
    nn.init.zeros_(conv.bias)
    nn.init.trunc_normal_(model.encoder.cls_token, mean=0.0, std=0.02, a=-0.02, b=0.02)
    nn.init.trunc_normal_(model.mask_token, mean=0.0, std=0.02, a=-0.02, b=0.02)


def build_model(cfg, seed):
    """Fresh float32 model, initialized deterministically from `seed`."""
    torch.manual_seed(seed)
    model = CAE(cfg)
    init_weights(model)
    return model


def trainable_named_parameters(model):
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def no_weight_decay(name, param):
    """Section 2.4: ndim == 1 or name ending in '.bias' -> wd 0 (cls/mask tokens [1,1,D] ARE decayed)."""
    return param.ndim == 1 or name.endswith(".bias")


def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, p in trainable_named_parameters(model):
        (no_decay if no_weight_decay(name, p) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]
