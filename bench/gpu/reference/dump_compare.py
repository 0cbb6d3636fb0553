"""Reading llama.cpp's dump (bench/src/reference-dump.ts) and comparing a reference with it.

A reference is any function from token ids to log-softmax rows, one per position. Each prompt is
compared teacher-forced: the reference runs once over the prompt plus llama.cpp's greedy tokens
(all but the last), so its rows line up with the dump's steps, step 0 being the next token after
the prompt. Greedy equality follows from the argmaxes: if the reference's argmax is llama.cpp's
token at every step, the reference's own greedy run yields the same tokens, and the first step
where they differ is where the two greedy runs part.
"""
from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np

DUMP_FORMAT = "bamba-reference-dump/1"

# Default tolerances on log-probabilities (max abs difference), by what llama.cpp computed in.
# Measured on the CPU here: F32 weights with an F32 K/V cache agree with the float64 numpy
# reference to 4e-5 (tiny and an F32 copy of small); an F16 K/V cache (what the gpu-node serves
# with) adds up to 1e-2. F16 weights (small) reach 1.8e-2 with node-llama-cpp's prebuilt CPU
# binary and 6.6e-2 with a native build of the same source (other SIMD paths for the half-
# precision matmuls), so their tolerance is set by what it must still catch: the smallest
# deliberate mapping mistake the sensitivity check detects on small differs by 2.4, ten times it.
TOLERANCE_F32 = 1e-3
TOLERANCE_HALF_KV = 5e-2
TOLERANCE_HALF_WEIGHTS = 0.25

LogProbs = Callable[[list[int]], np.ndarray]


def load_dump(path: str) -> dict[str, Any]:
    """Parse and validate a dump file (format, shapes, token ranges)."""
    with open(path, encoding="utf-8") as file:
        dump = json.load(file)
    if dump.get("format") != DUMP_FORMAT:
        raise ValueError(f"{path}: format {dump.get('format')!r}, expected {DUMP_FORMAT}")
    if dump.get("values") != "log-softmax":
        raise ValueError(f"{path}: values {dump.get('values')!r}, expected log-softmax")
    vocab = int(dump["vocabSize"])
    for prompt in dump["prompts"]:
        steps = len(prompt["greedyTokens"])
        if steps == 0 or len(prompt["stepLogProbs"]) != steps or any(len(row) != vocab for row in prompt["stepLogProbs"]):
            raise ValueError(f"{path}: prompt {prompt['name']} has inconsistent steps")
        if any(not 0 <= token < vocab for token in prompt["tokens"] + prompt["greedyTokens"]):
            raise ValueError(f"{path}: prompt {prompt['name']} has token ids outside the vocabulary")
    return dump


def default_tolerance(dump: dict[str, Any], weight_types: set[str]) -> float:
    if weight_types - {"F32"}:
        return TOLERANCE_HALF_WEIGHTS
    return TOLERANCE_HALF_KV if dump["engine"].get("kvCache", "F16") != "F32" else TOLERANCE_F32


def compare_prompt(log_probs: LogProbs, prompt: dict[str, Any], tolerance: float) -> dict[str, Any]:
    tokens = list(prompt["tokens"])
    greedy = list(prompt["greedyTokens"])
    steps = len(greedy)
    reference = np.asarray(log_probs(tokens + greedy[:-1]), dtype=np.float64)[len(tokens) - 1:]
    dumped = np.array([[np.nan if value is None else value for value in row] for row in prompt["stepLogProbs"]], dtype=np.float64)
    finite = np.isfinite(dumped)
    difference = np.where(finite, np.abs(reference - np.where(finite, dumped, 0.0)), 0.0)
    # A probability that underflowed to 0 in llama.cpp's float32 softmax must be tiny here too.
    underflow_ok = bool(np.all(reference[~finite] < np.log(np.finfo(np.float32).tiny) + 10)) if (~finite).any() else True
    argmax = reference.argmax(axis=-1)
    divergences = []
    for step in np.nonzero(argmax != np.asarray(greedy))[0]:
        margin = float(reference[step, argmax[step]] - reference[step, greedy[step]])
        divergences.append({"step": int(step), "llamaCpp": int(greedy[step]), "reference": int(argmax[step]), "margin": margin, "nearTie": margin <= tolerance})
    next_token_max = float(difference[0].max())
    all_steps_max = float(difference.max())
    greedy_equal = not divergences
    passed = next_token_max <= tolerance and all_steps_max <= tolerance and underflow_ok and all(item["nearTie"] for item in divergences)
    return {
        "name": prompt["name"],
        "promptTokens": len(tokens),
        "steps": steps,
        "nextTokenMaxAbsDiff": next_token_max,
        "allStepsMaxAbsDiff": all_steps_max,
        "greedyEqual": greedy_equal,
        "greedyDivergences": divergences,
        "underflowedEntries": int((~finite).sum()),
        "underflowConsistent": underflow_ok,
        "pass": passed,
    }


def compare_dump(log_probs: LogProbs, dump: dict[str, Any], tolerance: float) -> dict[str, Any]:
    prompts = [compare_prompt(log_probs, prompt, tolerance) for prompt in dump["prompts"]]
    return {
        "tolerance": tolerance,
        "prompts": prompts,
        "nextTokenMaxAbsDiff": max(item["nextTokenMaxAbsDiff"] for item in prompts),
        "allStepsMaxAbsDiff": max(item["allStepsMaxAbsDiff"] for item in prompts),
        "greedyEqual": all(item["greedyEqual"] for item in prompts),
        "pass": all(item["pass"] for item in prompts),
    }
