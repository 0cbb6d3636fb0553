"""Hugging Face transformers' BambaForCausalLM as the reference, built from the GGUF's config.

Built with `BambaForCausalLM(config)` (no hub, no checkpoint files), loaded with the mapped state
dict (every key must match: nothing missing, nothing unexpected, every value as mapped), run in
float32 with eager attention and the mixer's torch path. Only imported when torch and
transformers are present (the GPU host); the dry run never touches this file.

Written against transformers 5.x, read from its source: BambaConfig takes RoPE as
`rope_parameters` (a `rope_theta` keyword still works through the RoPE standardisation, and is
what 4.x took) and hardcodes `partial_rotary_factor = 0.5` "for BC", which later 5.x configs copy
into `rope_parameters`. Whether the rotary embedding applies it depends on the version (5.x's
generated BambaRotaryEmbedding computes default RoPE over the whole head), so the width is
measured from the built model, never assumed. The mixer's CUDA kernels (mamba_ssm,
causal-conv1d) come from local packages or the `kernels` hub package; both are kept out.
"""
from __future__ import annotations

import os

# The GPU host has no network: never let transformers (or its lazily loaded hub kernels) wait on it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# No layer replaced by a hub kernel (read when transformers is imported).
os.environ.setdefault("USE_HUB_KERNELS", "NO")

import sys
from typing import Any

import numpy as np


def unavailable_reason() -> str | None:
    """None when torch and transformers with BambaForCausalLM import; otherwise why not."""
    try:
        import torch  # noqa: F401
        from transformers import BambaConfig, BambaForCausalLM  # noqa: F401
    except Exception as error:  # ImportError, or a broken install
        return f"{type(error).__name__}: {error}"
    return None


def versions() -> dict[str, str]:
    import torch
    import transformers
    return {"torch": torch.__version__, "transformers": transformers.__version__}


def _plain(value: Any) -> Any:
    """A JSON-safe copy (the result is written with json.dump)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return str(value)


def _rope_thetas_of(config: Any) -> set[float]:
    """Every rope_theta a built config holds: in `rope_parameters` (flat or per layer type; 5.x) and
    as an attribute (4.x, which keeps an unknown `rope_parameters` as an inert attribute)."""
    found: set[float] = set()
    parameters = getattr(config, "rope_parameters", None)
    if isinstance(parameters, dict):
        for item in [parameters, *parameters.values()]:
            if isinstance(item, dict) and isinstance(item.get("rope_theta"), (int, float)):
                found.add(float(item["rope_theta"]))
    theta = getattr(config, "rope_theta", None)
    if isinstance(theta, (int, float)) and not isinstance(theta, bool):
        found.add(float(theta))
    return found


def _keep_hub_kernels_away() -> str:
    """Keep the mixer's kernels from the `kernels` hub package: offline, get_kernel can raise what
    lazy_load_kernel does not catch (it catches FileNotFoundError), failing the model's construction.
    Without it transformers looks for locally installed mamba_ssm / causal_conv1d only."""
    try:
        from transformers.integrations import hub_kernels
    except Exception as error:
        return f"not patched ({type(error).__name__}: {error})"
    patched = []
    if callable(getattr(hub_kernels, "is_kernels_available", None)):
        hub_kernels.is_kernels_available = lambda: False
        patched.append("is_kernels_available")
    if isinstance(getattr(hub_kernels, "_kernels_available", None), bool):
        hub_kernels._kernels_available = False
        patched.append("_kernels_available")
    return "disabled (" + ", ".join(patched) + ")" if patched else "no hub kernel switch found"


def _force_torch_mixer(model: Any) -> str:
    """Send every Mamba mixer down its torch path (the reference math, and the only path on the
    CPU) even where mamba_ssm and causal-conv1d kernels loaded: their module-level switch."""
    mixers = [module for module in model.modules() if type(module).__name__.endswith("Mixer") and hasattr(type(module), "torch_forward")]
    if not mixers:
        return "no mixer with torch_forward found"
    states = []
    for name in sorted({type(mixer).forward.__module__ for mixer in mixers}):
        module = sys.modules.get(name)
        if module is None or not hasattr(module, "is_fast_path_available"):
            states.append(f"{name}: no is_fast_path_available")
        elif module.is_fast_path_available:
            module.is_fast_path_available = False
            states.append(f"{name}: kernels present, torch path forced")
        else:
            states.append(f"{name}: kernels absent, torch path")
    return "; ".join(states)


def _default_inv_freq(torch: Any, theta: float, dims: int) -> Any:
    """Default RoPE frequencies over `dims` values, computed as HF computes them."""
    return 1.0 / (theta ** (torch.arange(0, dims, 2, dtype=torch.int64).to(dtype=torch.float) / dims))


class TorchBamba:
    """BambaForCausalLM with our weights. Check `problems` before trusting any output."""

    def __init__(self, config_kwargs: dict[str, Any], state_dict: dict[str, np.ndarray], expected_shapes: dict[str, tuple[int, ...]], device: str = "cpu"):
        import torch
        from transformers import BambaConfig, BambaForCausalLM

        self.torch = torch
        self.device = device
        self.problems: list[str] = []
        self.details: dict[str, Any] = {"hubKernels": _keep_hub_kernels_away()}
        kwargs = dict(config_kwargs)
        self.rope_theta = float(kwargs.pop("rope_theta"))
        config = self._build_config(BambaConfig, kwargs)
        try:
            # Plain matmul + softmax attention: the most literal reading of the reference.
            config._attn_implementation = "eager"
        except Exception:
            pass
        self.config = config
        torch.manual_seed(0)
        model = BambaForCausalLM(config).to(dtype=torch.float32)
        model.eval()
        if str(getattr(model.config, "_attn_implementation", "")) != "eager" and hasattr(model, "set_attn_implementation"):
            try:
                model.set_attn_implementation("eager")
            except Exception as error:
                self.details["attentionNote"] = f"set_attn_implementation('eager') failed: {type(error).__name__}: {error}"
        self.details["mixer"] = _force_torch_mixer(model)
        self.details["configRopeParameters"] = _plain(getattr(model.config, "rope_parameters", None))
        self.details["configPartialRotaryFactor"] = _plain(getattr(model.config, "partial_rotary_factor", None))

        actual = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
        # Our expectations, written from reading modeling_bamba.py, against what this version builds.
        self.problems += [f"HF builds {name} {shape} that our expectations lack" for name, shape in actual.items() if name not in expected_shapes]
        self.problems += [f"our expectations list {name} {shape} that HF does not build" for name, shape in expected_shapes.items() if name not in actual]
        self.problems += [f"{name}: HF builds {actual[name]}, we expect {expected_shapes[name]}" for name in actual if name in expected_shapes and actual[name] != tuple(expected_shapes[name])]
        mismatched = [name for name, value in state_dict.items() if name in actual and actual[name] != tuple(value.shape)]
        if mismatched:
            self.problems += [f"mapped {name} is {tuple(state_dict[name].shape)}, HF needs {actual[name]}" for name in mismatched]
            self.missing_keys: list[str] = []
            self.unexpected_keys: list[str] = []
        else:
            tensors = {name: torch.from_numpy(np.array(value, dtype=np.float32)) for name, value in state_dict.items()}
            result = model.load_state_dict(tensors, strict=False)
            self.missing_keys = list(result.missing_keys)
            self.unexpected_keys = list(result.unexpected_keys)
            self.problems += [f"strict load: missing {name}" for name in self.missing_keys]
            self.problems += [f"strict load: unexpected {name}" for name in self.unexpected_keys]
            loaded = model.state_dict()
            self.problems += [f"{name} does not hold the mapped values after loading" for name, value in tensors.items() if name in loaded and not torch.equal(loaded[name].cpu(), value)]
        self.model = model.to(device)
        self.attention_implementation = str(getattr(model.config, "_attn_implementation", "unknown"))

        self.rotary = getattr(getattr(model, "model", None), "rotary_emb", None)
        inv_freq = getattr(self.rotary, "inv_freq", None)
        self._original_inv_freq = inv_freq.detach().clone() if inv_freq is not None else None
        self._original_original_inv_freq = getattr(self.rotary, "original_inv_freq", None)
        if self._original_original_inv_freq is not None:
            self._original_original_inv_freq = self._original_original_inv_freq.detach().clone()
        head_dim = config_kwargs["hidden_size"] // config_kwargs["num_attention_heads"]
        # None when this version's RoPE cannot be read (then it cannot be forced either).
        self.configured_rotary_dims = self._measured_rotary_dims(int(inv_freq.numel() * 2) if inv_freq is not None else None, head_dim)
        self.rotary_dims = self.configured_rotary_dims
        if inv_freq is None:
            self.details["ropeThetaApplied"] = None
            self.details["ropeNote"] = f"no model.rotary_emb.inv_freq ({type(self.rotary).__name__}): rope_theta unverified, RoPE width cannot be forced"
        else:
            # Did the config's RoPE parameters reach the model (default frequencies for our theta)? Not a
            # blocking problem: a wrong theta shows in the comparisons, and this explains them.
            expected = _default_inv_freq(torch, self.rope_theta, int(inv_freq.numel() * 2))
            theta_applied = bool(torch.allclose(inv_freq.detach().float().cpu(), expected, rtol=1e-5, atol=0.0))
            self.details["ropeThetaApplied"] = theta_applied
            if not theta_applied:
                self.details["ropeNote"] = f"HF's RoPE frequencies are not default RoPE with rope_theta {self.rope_theta} (config rope_parameters {self.details['configRopeParameters']})"
        scaling = getattr(self.rotary, "attention_scaling", 1.0)
        if isinstance(scaling, (int, float)) and scaling != 1.0:
            self.problems.append(f"HF's RoPE scales cos/sin by {scaling}; default RoPE does not")

    def _build_config(self, BambaConfig: Any, kwargs: dict[str, Any]) -> Any:
        """BambaConfig with our rope_theta: 5.x's `rope_parameters` first, then 4.x's `rope_theta`.
        4.x keeps an unknown `rope_parameters` as a plain attribute (no TypeError), so each try is
        checked by reading rope_theta back; the RoPE frequency check after building catches the rest.
        5.x validates field types (huggingface_hub's @strict): our values are plain Python types."""
        notes = []
        built = None
        first_error: Exception | None = None
        for extra in ({"rope_parameters": {"rope_type": "default", "rope_theta": self.rope_theta}}, {"rope_theta": self.rope_theta}):
            try:
                config = BambaConfig(**kwargs, **extra)
            except TypeError as error:
                first_error = first_error or error
                notes.append(f"BambaConfig({next(iter(extra))}=...) failed: {type(error).__name__}: {error}")
                continue
            built = config
            if _rope_thetas_of(config) == {self.rope_theta}:
                break
            notes.append(f"BambaConfig({next(iter(extra))}=...) holds rope_theta {sorted(_rope_thetas_of(config))}")
        if built is None:
            raise first_error  # type: ignore[misc]
        if notes:
            self.details["configNotes"] = notes
        return built

    def _measured_rotary_dims(self, from_inv_freq: int | None, head_dim: int) -> int | None:
        """How many head dims the attention rotates: the width of the cos the rotary module returns
        (apply_rotary_pos_emb rotates cos.shape[-1] values and passes the rest through)."""
        torch = self.torch
        try:
            with torch.no_grad():
                probe = torch.zeros(1, 1, head_dim, dtype=torch.float32, device=self.device)
                cos, _ = self.rotary(probe, torch.zeros(1, 1, dtype=torch.long, device=self.device))
            width = int(cos.shape[-1])
        except Exception as error:
            self.details["rotaryProbe"] = f"failed ({type(error).__name__}: {error}); width from inv_freq"
            return from_inv_freq
        if from_inv_freq is not None and width != from_inv_freq:
            self.details["rotaryProbe"] = f"cos is {width} wide, inv_freq gives {from_inv_freq}"
        return width

    def force_rotary_dims(self, dims: int) -> None:
        """Replace the rotary frequencies by default RoPE over `dims` values (as HF computes them);
        the configured width puts back exactly what this transformers built."""
        torch = self.torch
        if self._original_inv_freq is None:
            raise RuntimeError(f"cannot set the RoPE width: {self.details.get('ropeNote')}")
        if dims == self.configured_rotary_dims:
            inv_freq = self._original_inv_freq
            original = self._original_original_inv_freq
        else:
            inv_freq = _default_inv_freq(torch, self.rope_theta, dims)
            original = inv_freq
        self.rotary.inv_freq = inv_freq.clone().to(self.device)
        if original is not None and hasattr(self.rotary, "original_inv_freq"):
            self.rotary.original_inv_freq = original.clone().to(self.device)
        self.rotary_dims = dims

    def log_probs(self, tokens: list[int]) -> np.ndarray:
        torch = self.torch
        with torch.no_grad():
            ids = torch.tensor([tokens], dtype=torch.long, device=self.device)
            # logits_to_keep=0 (the default) keeps every position.
            logits = self.model(input_ids=ids, use_cache=False).logits[0].to(torch.float64)
            if logits.shape[0] != len(tokens):
                raise RuntimeError(f"BambaForCausalLM returned logits for {logits.shape[0]} of {len(tokens)} positions")
            return torch.log_softmax(logits, dim=-1).cpu().numpy()

    def generate(self, tokens: list[int], steps: int) -> list[int]:
        """HF's own greedy decoding (its cached recurrent path), no end-of-sequence."""
        torch = self.torch
        from transformers import GenerationConfig
        settings = GenerationConfig(max_new_tokens=steps, do_sample=False, num_beams=1, eos_token_id=None, pad_token_id=self.config.pad_token_id)
        with torch.no_grad():
            ids = torch.tensor([tokens], dtype=torch.long, device=self.device)
            output = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=settings)
        return [int(token) for token in output[0, len(tokens):].tolist()]
