"""The Bamba reference forward in numpy (float64), from the mapped HF state dict.

Follows transformers' modeling_bamba.py on its torch (non-CUDA-kernel) path, module by module:
BambaRMSNorm, BambaMixer.torch_forward, BambaAttention with rotate_half RoPE and repeat_kv,
BambaMLP (SwiGLU), BambaRMSNormGated (gate multiplied in before the norm), final_layernorm,
lm_head. The SSM uses the sequential recurrence that the chunked SSD algorithm in torch_forward
computes in blocks (the same sums, grouped differently); no dt clamp, since the config's
time_step_limit is (0, inf).

It reads HF names and HF layouts only, so a wrong transform in bamba_mapping.py (A sign, conv
layout, q/k permutation, norm shape) shows up as a difference against llama.cpp's numbers.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def _rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def _softplus(x: np.ndarray) -> np.ndarray:
    # torch.nn.functional.softplus: beta 1, threshold 20.
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


def _rotate_half(x: np.ndarray) -> np.ndarray:
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


class NumpyBamba:
    """Forward passes of BambaForCausalLM over whole token sequences (no cache)."""

    def __init__(self, state_dict: dict[str, np.ndarray], config: dict[str, Any], rotary_dims: int | None = None):
        self.weights = {name: value.astype(np.float64) for name, value in state_dict.items()}
        self.config = config
        self.head_dim = config["hidden_size"] // config["num_attention_heads"]
        self.rotary_dims = rotary_dims if rotary_dims is not None else self.head_dim
        self.eps = float(config["rms_norm_eps"])

    def log_probs(self, tokens: list[int]) -> np.ndarray:
        """log-softmax of the logits at every position: (len(tokens), vocab)."""
        logits = self.logits(tokens)
        shifted = logits - logits.max(axis=-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))

    def logits(self, tokens: list[int]) -> np.ndarray:
        w = self.weights
        hidden = w["model.embed_tokens.weight"][np.asarray(tokens)]
        attention = set(self.config["attn_layer_indices"])
        for layer in range(self.config["num_hidden_layers"]):
            prefix = f"model.layers.{layer}"
            normed = _rms_norm(hidden, w[f"{prefix}.input_layernorm.weight"], self.eps)
            mixed = self._attention(prefix, normed) if layer in attention else self._mixer(prefix, normed)
            hidden = hidden + mixed
            normed = _rms_norm(hidden, w[f"{prefix}.pre_ff_layernorm.weight"], self.eps)
            gate = normed @ w[f"{prefix}.feed_forward.gate_proj.weight"].T
            up = normed @ w[f"{prefix}.feed_forward.up_proj.weight"].T
            hidden = hidden + (_silu(gate) * up) @ w[f"{prefix}.feed_forward.down_proj.weight"].T
        hidden = _rms_norm(hidden, w["model.final_layernorm.weight"], self.eps)
        return hidden @ w["lm_head.weight"].T

    def _mixer(self, prefix: str, x: np.ndarray) -> np.ndarray:
        w = self.weights
        config = self.config
        steps = x.shape[0]
        inner = config["mamba_expand"] * config["hidden_size"]
        groups = config["mamba_n_groups"]
        state_size = config["mamba_d_state"]
        heads = config["mamba_n_heads"]
        head_dim = config["mamba_d_head"]
        conv_dim = inner + 2 * groups * state_size

        projected = x @ w[f"{prefix}.mamba.in_proj.weight"].T
        gate = projected[:, :inner]
        xbc = projected[:, inner:inner + conv_dim]
        dt = projected[:, inner + conv_dim:]

        # Depthwise causal conv1d (padding K-1, first `steps` outputs): cross-correlation, so the
        # last kernel tap multiplies the current step.
        kernel = w[f"{prefix}.mamba.conv1d.weight"][:, 0, :]
        taps = kernel.shape[1]
        padded = np.concatenate([np.zeros((taps - 1, conv_dim)), xbc], axis=0)
        conv = sum(padded[tap:tap + steps] * kernel[:, tap] for tap in range(taps))
        if f"{prefix}.mamba.conv1d.bias" in w:
            conv = conv + w[f"{prefix}.mamba.conv1d.bias"]
        xbc = _silu(conv)

        values = xbc[:, :inner].reshape(steps, heads, head_dim)
        b = xbc[:, inner:inner + groups * state_size].reshape(steps, groups, state_size)
        c = xbc[:, inner + groups * state_size:].reshape(steps, groups, state_size)
        group_of_head = np.arange(heads) // (heads // groups)
        b = b[:, group_of_head]
        c = c[:, group_of_head]
        dt = _softplus(dt + w[f"{prefix}.mamba.dt_bias"])
        a = -np.exp(w[f"{prefix}.mamba.A_log"])
        d = w[f"{prefix}.mamba.D"]

        state = np.zeros((heads, head_dim, state_size))
        y = np.empty((steps, heads, head_dim))
        for step in range(steps):
            decay = np.exp(dt[step] * a)
            state = state * decay[:, None, None] + (dt[step][:, None] * values[step])[:, :, None] * b[step][:, None, :]
            y[step] = np.einsum("hpn,hn->hp", state, c[step]) + d[:, None] * values[step]
        y = y.reshape(steps, inner)

        gated = y * _silu(gate)
        normed = _rms_norm(gated, w[f"{prefix}.mamba.norm.weight"], self.eps)
        return normed @ w[f"{prefix}.mamba.out_proj.weight"].T

    def _attention(self, prefix: str, x: np.ndarray) -> np.ndarray:
        w = self.weights
        config = self.config
        steps = x.shape[0]
        heads = config["num_attention_heads"]
        kv_heads = config["num_key_value_heads"]
        head_dim = self.head_dim
        q = (x @ w[f"{prefix}.self_attn.q_proj.weight"].T).reshape(steps, heads, head_dim)
        k = (x @ w[f"{prefix}.self_attn.k_proj.weight"].T).reshape(steps, kv_heads, head_dim)
        v = (x @ w[f"{prefix}.self_attn.v_proj.weight"].T).reshape(steps, kv_heads, head_dim)

        rotary = self.rotary_dims
        inv_freq = 1.0 / (float(config["rope_theta"]) ** (np.arange(0, rotary, 2, dtype=np.float64) / rotary))
        angles = np.arange(steps, dtype=np.float64)[:, None] * inv_freq[None, :]
        angles = np.concatenate([angles, angles], axis=-1)[:, None, :]
        cos, sin = np.cos(angles), np.sin(angles)

        def rope(t: np.ndarray) -> np.ndarray:
            rotated = t[..., :rotary] * cos + _rotate_half(t[..., :rotary]) * sin
            return np.concatenate([rotated, t[..., rotary:]], axis=-1)

        q, k = rope(q), rope(k)
        repeat = heads // kv_heads
        k = np.repeat(k, repeat, axis=1)
        v = np.repeat(v, repeat, axis=1)
        scores = np.einsum("thd,shd->hts", q, k) * head_dim ** -0.5
        scores = np.where(np.tril(np.ones((steps, steps), dtype=bool))[None], scores, -np.inf)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores = scores / scores.sum(axis=-1, keepdims=True)
        out = np.einsum("hts,shd->thd", scores, v).reshape(steps, heads * head_dim)
        return out @ w[f"{prefix}.self_attn.o_proj.weight"].T
