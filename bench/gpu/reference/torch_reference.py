"""Hugging Face transformers' BambaForCausalLM as the reference, built from the GGUF's config.

Built with `BambaForCausalLM(config)` (no hub, no checkpoint files), loaded with the mapped state
dict (every key must match: nothing missing, nothing unexpected, every value as mapped), run in
float32. Only imported when torch and transformers are present (the GPU host); the dry run never
touches this file.
"""
from __future__ import annotations

import os

# The GPU host has no network: never let transformers (or its lazily loaded hub kernels) wait on it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

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


class TorchBamba:
    """BambaForCausalLM with our weights. Check `problems` before trusting any output."""

    def __init__(self, config_kwargs: dict[str, Any], state_dict: dict[str, np.ndarray], expected_shapes: dict[str, tuple[int, ...]], device: str = "cpu"):
        import torch
        from transformers import BambaConfig, BambaForCausalLM

        self.torch = torch
        self.device = device
        self.problems: list[str] = []
        kwargs = dict(config_kwargs)
        self.rope_theta = float(kwargs.pop("rope_theta"))
        try:
            config = BambaConfig(**kwargs, rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta})
        except TypeError:
            # transformers before rope_parameters (4.x) took rope_theta directly.
            config = BambaConfig(**kwargs, rope_theta=self.rope_theta)
        try:
            # Plain matmul + softmax attention: the most literal reading of the reference.
            config._attn_implementation = "eager"
        except Exception:
            pass
        self.config = config
        torch.manual_seed(0)
        model = BambaForCausalLM(config).to(dtype=torch.float32)
        model.eval()

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
        rotary = model.model.rotary_emb
        self.configured_rotary_dims = int(rotary.inv_freq.numel() * 2)
        self.rotary_dims = self.configured_rotary_dims

    def force_rotary_dims(self, dims: int) -> None:
        """Replace the rotary frequencies by default RoPE over `dims` values (as HF computes them)."""
        torch = self.torch
        rotary = self.model.model.rotary_emb
        inv_freq = 1.0 / (self.rope_theta ** (torch.arange(0, dims, 2, dtype=torch.int64).to(dtype=torch.float) / dims))
        rotary.inv_freq = inv_freq.to(self.device)
        if hasattr(rotary, "original_inv_freq"):
            rotary.original_inv_freq = inv_freq.clone().to(self.device)
        self.rotary_dims = dims

    def log_probs(self, tokens: list[int]) -> np.ndarray:
        torch = self.torch
        with torch.no_grad():
            ids = torch.tensor([tokens], dtype=torch.long, device=self.device)
            logits = self.model(input_ids=ids, use_cache=False).logits[0].to(torch.float64)
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
