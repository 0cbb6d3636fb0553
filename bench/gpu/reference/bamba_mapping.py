"""GGUF (llama.cpp `granitehybrid`) -> Hugging Face `BambaForCausalLM`: config and state dict.

The inverse of llama.cpp's converter for `BambaForCausalLM` (convert_hf_to_gguf.py: class
GraniteHybridModel, built on Mamba2Model and GraniteMoeModel -> GraniteModel -> LlamaModel), read
from the llama.cpp release node-llama-cpp 3.21.1 bundles. What the converter does, and what we undo:

- every 2-D weight keeps its values: a GGUF [in, out] matrix read into numpy is (out, in), the
  nn.Linear layout; embeddings are (vocab, hidden) on both sides.
- attention q/k: the converter permutes rows for ggml's NORM (adjacent-pair) RoPE
  (`LlamaModel.permute`, `undo_permute = True` on GraniteHybridModel); we apply the inverse so the
  reference's rotate_half RoPE sees its own (half-split) layout. v and o are not permuted.
- mamba A: the converter stores A = -exp(A_log) (shape [1, n_head]); we store A_log = log(-A).
- mamba D and dt bias: D is reshaped to [1, n_head] (we flatten); `dt_bias` was renamed to
  `dt_proj.bias` -> `ssm_dt.bias` (values unchanged).
- conv1d: the converter squeezes [C, 1, K] to GGUF [K, C] (numpy (C, K)); we unsqueeze.
- gated RMSNorm inside the mixer: the converter reshapes [d_inner] to [n_group, d_inner/n_group]
  (GGUF [d_inner/n_group, n_group]); we flatten. Note the semantics differ for n_group > 1: HF's
  BambaRMSNormGated normalises over the whole d_inner, llama.cpp per group. Equal for n_group = 1.
- in_proj keeps its [z | xBC | dt] row order on both sides (llama.cpp views z, xBC, dt at the same
  offsets as HF's split).
- lm_head: `output.weight` when present (tie_word_embeddings = False), else tied to the embedding.

Names follow modeling_bamba.py: model.embed_tokens, model.layers.N.{input_layernorm,
pre_ff_layernorm, feed_forward.{gate,up,down}_proj, mamba.{in_proj, conv1d, dt_bias, A_log, D,
norm, out_proj}, self_attn.{q,k,v,o}_proj}, model.final_layernorm, lm_head.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gguf_reader import GgufFile


@dataclass
class Finding:
    """Something the reference cannot represent (`blocking`) or represents only approximately."""
    blocking: bool
    message: str


@dataclass
class BambaShape:
    """The GGUF's hyperparameters in BambaConfig's terms, plus what llama.cpp reads beside them."""
    config: dict[str, Any]
    head_dim: int
    rope_dims: int
    findings: list[Finding] = field(default_factory=list)


def _arch_key(gguf: GgufFile, name: str) -> str:
    return f"{gguf.get('general.architecture')}.{name}"


def bamba_shape(gguf: GgufFile) -> BambaShape:
    """BambaConfig keyword arguments from GGUF metadata, and what cannot be represented."""
    findings: list[Finding] = []
    arch = gguf.get("general.architecture")
    if arch != "granitehybrid":
        raise ValueError(f"{gguf.path}: architecture {arch!r}; the Bamba reference needs granitehybrid")

    def key(name: str, default: Any = None) -> Any:
        return gguf.get(_arch_key(gguf, name), default)

    hidden = int(key("embedding_length"))
    layers = int(key("block_count"))
    heads = key("attention.head_count")
    kv_heads = key("attention.head_count_kv")
    heads_per_layer = heads if isinstance(heads, list) else [heads] * layers
    kv_per_layer = kv_heads if isinstance(kv_heads, list) else [kv_heads] * layers
    attention_layers = [index for index, count in enumerate(kv_per_layer) if count != 0]
    attention_heads = {heads_per_layer[index] for index in attention_layers}
    attention_kv_heads = {kv_per_layer[index] for index in attention_layers}
    if len(attention_heads) > 1 or len(attention_kv_heads) > 1:
        findings.append(Finding(True, f"attention layers differ in head counts ({attention_heads} / {attention_kv_heads}); BambaConfig has one value"))
    num_heads = int(next(iter(attention_heads), heads_per_layer[0]))
    num_kv_heads = int(next(iter(attention_kv_heads), 1))
    head_dim = hidden // num_heads
    for name in ("attention.key_length", "attention.value_length"):
        if key(name) is not None and int(key(name)) != head_dim:
            findings.append(Finding(True, f"{name} = {key(name)} but BambaAttention's head_dim is hidden/heads = {head_dim}"))

    feed_forward = key("feed_forward_length")
    if isinstance(feed_forward, list):
        if len(set(feed_forward)) > 1:
            findings.append(Finding(True, f"per-layer feed_forward_length {feed_forward}; BambaConfig has one intermediate_size"))
        feed_forward = feed_forward[0]

    inner = int(key("ssm.inner_size"))
    ssm_heads = int(key("ssm.time_step_rank"))
    groups = int(key("ssm.group_count", 1))
    if inner % hidden != 0:
        findings.append(Finding(True, f"ssm.inner_size {inner} is not a multiple of the embedding {hidden} (mamba_expand must be an integer)"))
    if groups != 1:
        findings.append(Finding(True, f"ssm.group_count = {groups}: HF BambaRMSNormGated normalises over all of d_inner, llama.cpp per group"))

    if int(key("expert_count", 0) or 0) > 0:
        findings.append(Finding(True, f"mixture of experts ({key('expert_count')} experts): BambaForCausalLM has a dense MLP only"))
    for name in ("embedding_scale", "residual_scale", "attention.scale", "logit_scale"):
        if key(name) is not None:
            findings.append(Finding(True, f"Granite multiplier {name} = {key(name)}: BambaForCausalLM has no such scale"))
    if key("rope.scaling.finetuned", True) is not True:
        findings.append(Finding(True, "rope.scaling.finetuned is false (no RoPE, Granite 4.0 H style): BambaAttention always applies RoPE"))
    rope_dims = int(key("rope.dimension_count", head_dim))
    if rope_dims != head_dim:
        # llama.cpp rotates the first n_rot values of the converter-permuted (adjacent-pair)
        # layout, i.e. HF pairs (i, head_dim/2 + i) for i < n_rot/2; HF's partial rotate_half
        # pairs (i, n_rot/2 + i) inside the first n_rot values. Different pairings.
        findings.append(Finding(True, f"rope.dimension_count = {rope_dims} < head_dim {head_dim}: llama.cpp's partial RoPE on the permuted layout is not HF's partial rotate_half"))
    for name in ("rope.scaling.type", "rope.scaling.factor"):
        if key(name) not in (None, "none", 1.0, 0.0):
            findings.append(Finding(True, f"{name} = {key(name)}: only default RoPE is mapped"))

    has_output = "output.weight" in gguf.tensors
    vocab = gguf.shape("token_embd.weight")[0]
    epsilon = float(key("attention.layer_norm_rms_epsilon"))
    config = {
        "vocab_size": int(vocab),
        "tie_word_embeddings": not has_output,
        "hidden_size": hidden,
        "intermediate_size": int(feed_forward),
        "num_hidden_layers": layers,
        "num_attention_heads": num_heads,
        "num_key_value_heads": num_kv_heads,
        "hidden_act": "silu",
        "rms_norm_eps": epsilon,
        "max_position_embeddings": int(key("context_length")),
        "attn_layer_indices": attention_layers,
        "mamba_n_heads": ssm_heads,
        "mamba_d_head": inner // ssm_heads,
        "mamba_n_groups": groups,
        "mamba_d_state": int(key("ssm.state_size")),
        "mamba_d_conv": int(key("ssm.conv_kernel")),
        "mamba_expand": inner // hidden,
        "mamba_conv_bias": any(name.endswith("ssm_conv1d.bias") for name in gguf.tensors),
        "mamba_proj_bias": False,
        "rope_theta": float(key("rope.freq_base", 10000.0)),
        "pad_token_id": gguf.get("tokenizer.ggml.padding_token_id"),
        "bos_token_id": gguf.get("tokenizer.ggml.bos_token_id"),
        # No end-of-sequence for the reference: greedy runs are compared for a fixed length and
        # llama.cpp's dump does not stop at end-of-text either.
        "eos_token_id": None,
    }
    return BambaShape(config=config, head_dim=head_dim, rope_dims=rope_dims, findings=findings)


def expected_hf_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes BambaForCausalLM(config) creates, written from modeling_bamba.py."""
    hidden = config["hidden_size"]
    vocab = config["vocab_size"]
    ffn = config["intermediate_size"]
    heads = config["num_attention_heads"]
    kv_heads = config["num_key_value_heads"]
    head_dim = hidden // heads
    inner = config["mamba_expand"] * hidden
    conv_dim = inner + 2 * config["mamba_n_groups"] * config["mamba_d_state"]
    ssm_heads = config["mamba_n_heads"]
    shapes: dict[str, tuple[int, ...]] = {
        "model.embed_tokens.weight": (vocab, hidden),
        "model.final_layernorm.weight": (hidden,),
        "lm_head.weight": (vocab, hidden),
    }
    attention = set(config["attn_layer_indices"])
    for layer in range(config["num_hidden_layers"]):
        prefix = f"model.layers.{layer}"
        shapes[f"{prefix}.input_layernorm.weight"] = (hidden,)
        shapes[f"{prefix}.pre_ff_layernorm.weight"] = (hidden,)
        shapes[f"{prefix}.feed_forward.gate_proj.weight"] = (ffn, hidden)
        shapes[f"{prefix}.feed_forward.up_proj.weight"] = (ffn, hidden)
        shapes[f"{prefix}.feed_forward.down_proj.weight"] = (hidden, ffn)
        if layer in attention:
            shapes[f"{prefix}.self_attn.q_proj.weight"] = (heads * head_dim, hidden)
            shapes[f"{prefix}.self_attn.k_proj.weight"] = (kv_heads * head_dim, hidden)
            shapes[f"{prefix}.self_attn.v_proj.weight"] = (kv_heads * head_dim, hidden)
            shapes[f"{prefix}.self_attn.o_proj.weight"] = (hidden, heads * head_dim)
        else:
            shapes[f"{prefix}.mamba.in_proj.weight"] = (inner + conv_dim + ssm_heads, hidden)
            shapes[f"{prefix}.mamba.conv1d.weight"] = (conv_dim, 1, config["mamba_d_conv"])
            if config["mamba_conv_bias"]:
                shapes[f"{prefix}.mamba.conv1d.bias"] = (conv_dim,)
            shapes[f"{prefix}.mamba.dt_bias"] = (ssm_heads,)
            shapes[f"{prefix}.mamba.A_log"] = (ssm_heads,)
            shapes[f"{prefix}.mamba.D"] = (ssm_heads,)
            shapes[f"{prefix}.mamba.norm.weight"] = (inner,)
            shapes[f"{prefix}.mamba.out_proj.weight"] = (hidden, inner)
    return shapes


def rope_permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp converter's `LlamaModel.permute` (HF half-split rows -> ggml adjacent pairs)."""
    return weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def rope_unpermute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """The inverse of `rope_permute`: ggml adjacent pairs -> HF half-split rows."""
    return weights.reshape(n_head, weights.shape[0] // n_head // 2, 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


@dataclass
class MappedWeights:
    state_dict: dict[str, np.ndarray]
    # HF name -> the GGUF tensor it came from.
    sources: dict[str, str]
    # GGUF tensors nothing was mapped from.
    unused: list[str]
    # Numerical notes on transforms that are not exact (A through log/exp).
    notes: list[str]


def map_state_dict(gguf: GgufFile, shape: BambaShape) -> MappedWeights:
    """The HF state dict (float32 numpy arrays) for the GGUF's weights."""
    config = shape.config
    state: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    notes: list[str] = []

    def put(hf_name: str, gguf_name: str, value: np.ndarray) -> None:
        state[hf_name] = np.ascontiguousarray(value, dtype=np.float32)
        sources[hf_name] = gguf_name

    def plain(hf_name: str, gguf_name: str) -> None:
        put(hf_name, gguf_name, gguf.f32(gguf_name))

    plain("model.embed_tokens.weight", "token_embd.weight")
    plain("model.final_layernorm.weight", "output_norm.weight")
    plain("lm_head.weight", "output.weight" if "output.weight" in gguf.tensors else "token_embd.weight")
    attention = set(config["attn_layer_indices"])
    worst_a_error = 0.0
    for layer in range(config["num_hidden_layers"]):
        hf = f"model.layers.{layer}"
        blk = f"blk.{layer}"
        plain(f"{hf}.input_layernorm.weight", f"{blk}.attn_norm.weight")
        plain(f"{hf}.pre_ff_layernorm.weight", f"{blk}.ffn_norm.weight")
        plain(f"{hf}.feed_forward.gate_proj.weight", f"{blk}.ffn_gate.weight")
        plain(f"{hf}.feed_forward.up_proj.weight", f"{blk}.ffn_up.weight")
        plain(f"{hf}.feed_forward.down_proj.weight", f"{blk}.ffn_down.weight")
        if layer in attention:
            put(f"{hf}.self_attn.q_proj.weight", f"{blk}.attn_q.weight", rope_unpermute(gguf.f32(f"{blk}.attn_q.weight"), config["num_attention_heads"]))
            put(f"{hf}.self_attn.k_proj.weight", f"{blk}.attn_k.weight", rope_unpermute(gguf.f32(f"{blk}.attn_k.weight"), config["num_key_value_heads"]))
            plain(f"{hf}.self_attn.v_proj.weight", f"{blk}.attn_v.weight")
            plain(f"{hf}.self_attn.o_proj.weight", f"{blk}.attn_output.weight")
            continue
        mixer = f"{hf}.mamba"
        plain(f"{mixer}.in_proj.weight", f"{blk}.ssm_in.weight")
        conv = gguf.f32(f"{blk}.ssm_conv1d.weight")
        put(f"{mixer}.conv1d.weight", f"{blk}.ssm_conv1d.weight", conv.reshape(conv.shape[0], 1, conv.shape[1]))
        if f"{blk}.ssm_conv1d.bias" in gguf.tensors:
            plain(f"{mixer}.conv1d.bias", f"{blk}.ssm_conv1d.bias")
        plain(f"{mixer}.dt_bias", f"{blk}.ssm_dt.bias")
        a = gguf.f32(f"{blk}.ssm_a").reshape(-1)
        if np.any(a >= 0):
            raise ValueError(f"{blk}.ssm_a has non-negative entries; A = -exp(A_log) cannot represent them")
        a_log = np.log(-a.astype(np.float64)).astype(np.float32)
        put(f"{mixer}.A_log", f"{blk}.ssm_a", a_log)
        worst_a_error = max(worst_a_error, float(np.max(np.abs(-np.exp(a_log) - a) / np.abs(a))))
        put(f"{mixer}.D", f"{blk}.ssm_d", gguf.f32(f"{blk}.ssm_d").reshape(-1))
        put(f"{mixer}.norm.weight", f"{blk}.ssm_norm.weight", gguf.f32(f"{blk}.ssm_norm.weight").reshape(-1))
        plain(f"{mixer}.out_proj.weight", f"{blk}.ssm_out.weight")
    if worst_a_error > 0:
        notes.append(f"A = -exp(A_log) in float32 reproduces the GGUF's A to a relative {worst_a_error:.1e} at worst (not bit-exact)")
    used = set(sources.values())
    unused = [name for name in gguf.tensors if name not in used]
    return MappedWeights(state_dict=state, sources=sources, unused=unused, notes=notes)


def compare_shapes(mapped: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]]) -> list[str]:
    """Problems between a mapped state dict and expected shapes: missing, unexpected, mismatched."""
    problems = [f"missing: {name} {shape}" for name, shape in expected.items() if name not in mapped]
    problems += [f"unexpected: {name} {tuple(value.shape)}" for name, value in mapped.items() if name not in expected]
    problems += [
        f"shape: {name} is {tuple(mapped[name].shape)}, expected {expected[name]}"
        for name in expected if name in mapped and tuple(mapped[name].shape) != tuple(expected[name])
    ]
    return problems
