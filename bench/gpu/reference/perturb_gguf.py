#!/usr/bin/env python3
"""Copy a GGUF with its RMSNorm weights and Mamba D replaced by random values in [0.5, 1.5).

Our generator writes every norm weight and D as exactly 1, so a mapping that swapped
input_layernorm with pre_ff_layernorm, dropped the mixer's gated-norm weight or D, or
flattened ssm_norm in the wrong order would still agree with llama.cpp numerically. On the
perturbed copy it cannot. Same shapes and offsets: the copy's bytes differ only inside those
tensors (all F32), so no re-encoding is needed.

    python3 perturb_gguf.py IN.gguf OUT.gguf [--seed 7]
"""
from __future__ import annotations

import sys

sys.dont_write_bytecode = True

import argparse
import os
import shutil

import numpy as np

from gguf_reader import GgufFile

PERTURBED_SUFFIXES = ("attn_norm.weight", "ffn_norm.weight", "ssm_norm.weight", "ssm_d")


def perturbed_tensor_names(gguf: GgufFile) -> list[str]:
    return [name for name in gguf.tensors if name == "output_norm.weight" or name.endswith(PERTURBED_SUFFIXES)]


def perturb(source: str, target: str, seed: int = 7) -> list[str]:
    """Write the perturbed copy; returns the names of the tensors changed."""
    gguf = GgufFile(source)
    names = perturbed_tensor_names(gguf)
    for name in names:
        if gguf.tensors[name].type_name != "F32":
            raise ValueError(f"{name} is {gguf.tensors[name].type_name}; only F32 tensors are perturbed in place")
    temporary = f"{target}.partial-{os.getpid()}"
    shutil.copyfile(source, temporary)
    data = np.memmap(temporary, dtype=np.uint8, mode="r+")
    random = np.random.default_rng(seed)
    for name in names:
        tensor = gguf.tensors[name]
        count = int(np.prod(tensor.dims, dtype=np.int64))
        values = random.uniform(0.5, 1.5, size=count).astype("<f4")
        data[tensor.offset:tensor.offset + values.nbytes] = np.frombuffer(values.tobytes(), dtype=np.uint8)
    data.flush()
    del data
    os.replace(temporary, target)
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()
    names = perturb(arguments.source, arguments.target, arguments.seed)
    print(f"perturb_gguf: {len(names)} tensors set to U[0.5, 1.5) in {arguments.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
