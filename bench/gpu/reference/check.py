#!/usr/bin/env python3
"""Reference check: is the model we generate and serve Bamba as transformers defines it?

Maps a `granitehybrid` GGUF onto Hugging Face's BambaForCausalLM (bamba_mapping.py) and compares
llama.cpp's numbers (dumps from bench/src/reference-dump.ts) with the reference's, prompt by
prompt: next-token log-softmax (max abs difference), the same over every greedy step, and
whether the greedy tokens are equal.

Two references:
- numpy: the Bamba forward written out in float64 (numpy_bamba.py). Always run; needs numpy only.
- transformers: BambaForCausalLM(config) with the mapped weights loaded strictly, float32
  (torch_reference.py). Run when torch and transformers import (the GPU host), or with --torch.

Without torch (`--dry-run`, or automatically) the mapping is still checked in full: every HF
parameter's name and shape against what modeling_bamba.py builds for the config, nothing left
unmapped, no GGUF tensor unused; then the numpy forward, and a sensitivity test showing that
each plausible transform mistake (q/k permutation, A, conv taps, dt bias, norms, D) would be
caught. Exit 0 only when everything passes; 1 on a failed check; 2 when the GGUF holds something
the reference cannot represent, or on bad arguments.

    python3 check.py --gguf MODEL.gguf --dump DUMP.json [--dump ...] [--dry-run] [--out RESULT.json]
"""
from __future__ import annotations

import sys

# Run from the repository: never leave __pycache__ folders in the source tree.
sys.dont_write_bytecode = True

import argparse
import datetime
import json
import os
from typing import Any, Callable

# The numpy reference multiplies small matrices: OpenBLAS threads only contend (4x slower on a
# busy 2-core machine). Set before numpy loads; torch's own thread pool (OpenMP, MKL) is untouched.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from bamba_mapping import BambaShape, bamba_shape, compare_shapes, expected_hf_shapes, map_state_dict, rope_permute, rope_unpermute
from dump_compare import compare_dump, compare_prompt, default_tolerance, load_dump
from gguf_reader import GgufFile
from numpy_bamba import NumpyBamba

RESULT_FORMAT = "bamba-reference-check/1"


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", required=True, help="the granitehybrid GGUF the dumps were made from")
    parser.add_argument("--dump", action="append", default=[], help="a reference-dump JSON (repeatable)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="numpy only, even if torch is installed")
    mode.add_argument("--torch", action="store_true", help="require torch + transformers (fail if absent)")
    parser.add_argument("--torch-device", default="cpu", help="device for the transformers reference (default cpu)")
    parser.add_argument("--tolerance", type=float, help="max abs log-probability difference (default by precision, see dump_compare.py)")
    parser.add_argument("--no-sensitivity", action="store_true", help="skip the transform-mistake sensitivity test")
    parser.add_argument("--out", help="write the result JSON here and a markdown summary beside it (.md)")
    return parser.parse_args(argv)


def permutation_round_trip(shape: BambaShape) -> bool:
    """Our inverse undoes llama.cpp's converter permutation for this model's head counts."""
    random = np.random.default_rng(0)
    config = shape.config
    for heads in {config["num_attention_heads"], config["num_key_value_heads"]}:
        rows = np.arange(heads * shape.head_dim * 3, dtype=np.float32).reshape(heads * shape.head_dim, 3) + random.random((heads * shape.head_dim, 3), dtype=np.float32)
        if not (np.array_equal(rope_unpermute(rope_permute(rows, heads), heads), rows) and np.array_equal(rope_permute(rope_unpermute(rows, heads), heads), rows)):
            return False
    return True


def sabotages(gguf: GgufFile, shape: BambaShape, state: dict[str, np.ndarray]) -> list[tuple[str, dict[str, np.ndarray] | None]]:
    """Plausible mapping mistakes, each as a broken copy of the state dict (None: cannot differ here)."""
    config = shape.config
    attention = config["attn_layer_indices"]
    mamba = [layer for layer in range(config["num_hidden_layers"]) if layer not in attention]
    cases: list[tuple[str, dict[str, np.ndarray] | None]] = []

    def edited(edit: Callable[[dict[str, np.ndarray]], None]) -> dict[str, np.ndarray]:
        copy = dict(state)
        edit(copy)
        return copy

    if attention:
        def keep_llama_order(copy: dict[str, np.ndarray]) -> None:
            for layer in attention:
                copy[f"model.layers.{layer}.self_attn.q_proj.weight"] = gguf.f32(f"blk.{layer}.attn_q.weight")
                copy[f"model.layers.{layer}.self_attn.k_proj.weight"] = gguf.f32(f"blk.{layer}.attn_k.weight")
        cases.append(("q/k rows left in llama.cpp's RoPE order (no inverse permutation)", edited(keep_llama_order)))
    if mamba:
        def per_mixer(field: str, change: Callable[[np.ndarray], np.ndarray]) -> dict[str, np.ndarray]:
            return edited(lambda copy: copy.update({f"model.layers.{layer}.mamba.{field}": change(copy[f"model.layers.{layer}.mamba.{field}"]) for layer in mamba}))
        cases.append(("A_log = -A (log forgotten)", per_mixer("A_log", lambda a_log: np.exp(a_log))))
        cases.append(("conv1d taps reversed", per_mixer("conv1d.weight", lambda kernel: kernel[..., ::-1].copy())))
        cases.append(("dt_bias dropped", per_mixer("dt_bias", np.zeros_like)))
        cases.append(("D dropped", per_mixer("D", np.zeros_like)))
        first = f"model.layers.{mamba[0]}.mamba.norm.weight"
        cases.append(("gated-norm weight ignored", per_mixer("norm.weight", np.ones_like) if not np.all(state[first] == 1) else None))
    swap_differs = any(not np.array_equal(state[f"model.layers.{layer}.input_layernorm.weight"], state[f"model.layers.{layer}.pre_ff_layernorm.weight"]) for layer in range(config["num_hidden_layers"]))

    def swap_norms(copy: dict[str, np.ndarray]) -> None:
        for layer in range(config["num_hidden_layers"]):
            prefix = f"model.layers.{layer}"
            copy[f"{prefix}.input_layernorm.weight"], copy[f"{prefix}.pre_ff_layernorm.weight"] = state[f"{prefix}.pre_ff_layernorm.weight"], state[f"{prefix}.input_layernorm.weight"]
    cases.append(("input_layernorm and pre_ff_layernorm swapped", edited(swap_norms) if swap_differs else None))
    return cases


def sensitivity(gguf: GgufFile, shape: BambaShape, state: dict[str, np.ndarray], dump: dict[str, Any], tolerance: float) -> list[dict[str, Any]]:
    prompt = dump["prompts"][0]
    results = []
    for name, broken in sabotages(gguf, shape, state):
        if broken is None:
            results.append({"mistake": name, "applicable": False, "detected": None, "note": "the GGUF's values make this mistake invisible (all ones); use a perturbed copy (perturb_gguf.py)"})
            continue
        with np.errstate(over="ignore", invalid="ignore"):
            outcome = compare_prompt(NumpyBamba(broken, shape.config, rotary_dims=shape.rope_dims).log_probs, prompt, tolerance)
        results.append({"mistake": name, "applicable": True, "detected": not outcome["pass"], "allStepsMaxAbsDiff": outcome["allStepsMaxAbsDiff"], "greedyEqual": outcome["greedyEqual"]})
    return results


def describe_dump(path: str, dump: dict[str, Any]) -> dict[str, Any]:
    engine = dump["engine"]
    return {"path": path, "device": engine["device"], "kvCache": engine.get("kvCache"), "flashAttention": engine.get("flashAttention"), "gpuDevices": engine.get("gpuDevices", []), "llamaCpp": engine.get("llamaCpp"), "nodeLlamaCpp": engine.get("nodeLlamaCpp")}


def run(arguments: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    gguf = GgufFile(arguments.gguf)
    shape = bamba_shape(gguf)
    weight_types = sorted({tensor.type_name for tensor in gguf.tensors.values() if len(tensor.dims) >= 2})
    result: dict[str, Any] = {
        "format": RESULT_FORMAT,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "gguf": {"path": os.path.abspath(arguments.gguf), "name": gguf.get("general.name"), "weightTypes": weight_types},
        "config": shape.config,
        "findings": [{"blocking": finding.blocking, "message": finding.message} for finding in shape.findings],
    }
    if any(finding.blocking for finding in shape.findings):
        result["pass"] = False
        result["verdict"] = "the reference cannot represent this GGUF (see findings)"
        return 2, result

    mapped = map_state_dict(gguf, shape)
    expected = expected_hf_shapes(shape.config)
    problems = compare_shapes(mapped.state_dict, expected)
    problems += [f"unused GGUF tensor: {name}" for name in mapped.unused]
    if not permutation_round_trip(shape):
        problems.append("rope_unpermute does not invert the converter's permutation")
    result["mapping"] = {
        "hfParameters": len(expected),
        "mapped": len(mapped.state_dict),
        "ggufTensors": len(gguf.tensors),
        "problems": problems,
        "notes": mapped.notes,
        "sources": mapped.sources,
    }

    dumps = []
    for path in arguments.dump:
        dump = load_dump(path)
        if dump["vocabSize"] != shape.config["vocab_size"]:
            problems.append(f"{path}: vocabulary {dump['vocabSize']} but the GGUF has {shape.config['vocab_size']}")
        if dump["model"].get("name") != gguf.get("general.name") or os.path.basename(dump["model"]["path"]) != os.path.basename(arguments.gguf):
            problems.append(f"{path}: dumped from {dump['model']['path']} ({dump['model'].get('name')}), not from {arguments.gguf}")
        dumps.append((path, dump))

    comparisons: list[dict[str, Any]] = []
    tolerance_of = lambda dump: arguments.tolerance if arguments.tolerance is not None else default_tolerance(dump, set(weight_types))
    numpy_reference = NumpyBamba(mapped.state_dict, shape.config, rotary_dims=shape.rope_dims)
    for path, dump in dumps:
        comparisons.append({"reference": "numpy float64", "dump": describe_dump(path, dump), **compare_dump(numpy_reference.log_probs, dump, tolerance_of(dump))})

    if dumps and not arguments.no_sensitivity:
        path, dump = min(dumps, key=lambda item: tolerance_of(item[1]))
        result["sensitivity"] = sensitivity(gguf, shape, mapped.state_dict, dump, tolerance_of(dump))

    from torch_reference import unavailable_reason
    reason = None if not arguments.dry_run else "--dry-run"
    if reason is None:
        reason = unavailable_reason()
        if reason is not None and arguments.torch:
            result["pass"] = False
            result["verdict"] = f"--torch given but torch/transformers unavailable: {reason}"
            return 1, result
    result["mode"] = "dry-run" if reason else "torch"
    if reason:
        result["torch"] = {"skipped": reason}
    else:
        try:
            result["torch"] = run_torch(arguments, shape, mapped.state_dict, expected, dumps, comparisons, tolerance_of)
        except Exception as error:  # keep the numpy results: report what broke in the transformers run
            import traceback
            result["torch"] = {"problems": [f"transformers reference failed: {type(error).__name__}: {error}"], "traceback": traceback.format_exc()}
            try:
                from torch_reference import versions
                result["torch"].update(versions())
            except Exception:
                pass
        problems += result["torch"]["problems"]

    result["comparisons"] = comparisons
    sensitivity_ok = all(item["detected"] is not False for item in result.get("sensitivity", []))
    strict_comparisons = [item for item in comparisons if not item.get("informational")]
    passed = not problems and all(item["pass"] for item in strict_comparisons) and sensitivity_ok
    result["pass"] = passed
    result["verdict"] = verdict(result, problems, strict_comparisons, sensitivity_ok)
    return (0 if passed else 1), result


def run_torch(arguments: argparse.Namespace, shape: BambaShape, state: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]], dumps: list[tuple[str, dict[str, Any]]], comparisons: list[dict[str, Any]], tolerance_of: Callable[[dict[str, Any]], float]) -> dict[str, Any]:
    from torch_reference import TorchBamba, versions
    reference = TorchBamba(shape.config, state, expected, device=arguments.torch_device)
    label = f"transformers {versions()['transformers']} float32 {arguments.torch_device}"
    info: dict[str, Any] = {
        **versions(),
        "device": arguments.torch_device,
        "attentionImplementation": reference.attention_implementation,
        "missingKeys": reference.missing_keys,
        "unexpectedKeys": reference.unexpected_keys,
        "problems": list(reference.problems),
        "configuredRotaryDims": reference.configured_rotary_dims,
        "ggufRotaryDims": shape.rope_dims,
        # How the config, the RoPE and the mixer came out in this version (torch_reference.py).
        "details": reference.details,
    }
    if reference.problems:
        return info
    for path, dump in dumps:
        comparisons.append({"reference": label, "dump": describe_dump(path, dump), **compare_dump(reference.log_probs, dump, tolerance_of(dump))})
    if reference.configured_rotary_dims is not None and reference.configured_rotary_dims != shape.rope_dims:
        # BambaConfig hardcodes partial_rotary_factor = 0.5 "for BC"; whether a transformers version
        # applies it decides how many dims its RoPE rotates. Compare both readings, say which matches.
        info["rotaryNote"] = (f"this transformers' BambaForCausalLM rotates {reference.configured_rotary_dims} of {shape.head_dim} head dims; "
                              f"the GGUF (rope.dimension_count) and llama.cpp rotate {shape.rope_dims}. The comparison marked 'rotary forced' replaces the reference's RoPE frequencies by {shape.rope_dims}-dim default RoPE.")
        reference.force_rotary_dims(shape.rope_dims)
        for path, dump in dumps:
            comparisons.append({"reference": f"{label}, rotary forced to {shape.rope_dims}", "informational": True, "dump": describe_dump(path, dump), **compare_dump(reference.log_probs, dump, tolerance_of(dump))})
        reference.force_rotary_dims(reference.configured_rotary_dims)
    generated = []
    if dumps:
        path, dump = dumps[0]
        for prompt in dump["prompts"]:
            try:
                tokens = reference.generate(list(prompt["tokens"]), len(prompt["greedyTokens"]))
                first = next((step for step, (ours, theirs) in enumerate(zip(tokens, prompt["greedyTokens"])) if ours != theirs), None)
                generated.append({"prompt": prompt["name"], "tokens": tokens, "equal": tokens == prompt["greedyTokens"], "firstDifference": first})
            except Exception as error:  # generate()'s API moves between versions; this part is informational
                generated.append({"prompt": prompt["name"], "error": f"{type(error).__name__}: {error}"})
        info["generate"] = {"dump": path, "note": "HF generate() (its cached decode path) against the first dump's greedy tokens; informational", "prompts": generated}
    return info


def verdict(result: dict[str, Any], problems: list[str], comparisons: list[dict[str, Any]], sensitivity_ok: bool) -> str:
    if problems:
        return f"{len(problems)} mapping problem(s): " + "; ".join(problems[:5])
    failed = [item for item in comparisons if not item["pass"]]
    torch = result.get("torch", {})
    if failed:
        forced = [item for item in result["comparisons"] if item.get("informational")]
        if torch.get("rotaryNote") and forced and all(item["pass"] for item in forced):
            return "differs only in RoPE width: " + torch["rotaryNote"]
        return "differences beyond tolerance: " + ", ".join(f"{item['reference']} vs {item['dump']['device']}/{item['dump']['kvCache']} ({item['allStepsMaxAbsDiff']:.2e} > {item['tolerance']:.2g} or greedy differs)" for item in failed)
    if not sensitivity_ok:
        return "a transform mistake would go unnoticed: " + ", ".join(item["mistake"] for item in result["sensitivity"] if item["detected"] is False)
    if not comparisons:
        return "mapping complete and shape-correct (no dump compared)"
    return "matches" + ("" if result.get("mode") == "torch" else " (numpy reference; transformers not run)")


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# Reference check: {os.path.basename(result['gguf']['path'])} ({result['gguf']['name']})", "", f"{result['date']}, {result.get('mode', 'not run')}; verdict: **{'PASS' if result['pass'] else 'FAIL'}**: {result['verdict']}", ""]
    mapping = result.get("mapping")
    if mapping:
        lines += [f"Mapping: {mapping['mapped']} HF parameters from {mapping['ggufTensors']} GGUF tensors; problems: {len(mapping['problems'])}."]
        lines += [f"- {note}" for note in mapping["notes"]]
        lines += [f"- problem: {problem}" for problem in mapping["problems"][:20]]
    lines += [f"- finding: {finding['message']}" for finding in result.get("findings", [])]
    torch = result.get("torch", {})
    if "skipped" in torch:
        lines += ["", f"transformers not run: {torch['skipped']}"]
    elif torch:
        lines += ["", f"torch {torch.get('torch')}, transformers {torch.get('transformers')}, attention {torch.get('attentionImplementation')}, rotary dims {torch.get('configuredRotaryDims')} (GGUF {torch.get('ggufRotaryDims')})"]
        if torch.get("rotaryNote"):
            lines += [f"- {torch['rotaryNote']}"]
        for item in torch.get("generate", {}).get("prompts", []):
            lines += [f"- generate() {item['prompt']}: " + (item["error"] if "error" in item else ("equal" if item["equal"] else f"differs from step {item['firstDifference']}"))]
    if result.get("comparisons"):
        lines += ["", "| reference | llama.cpp dump | tolerance | next-token max abs diff | all steps max abs diff | greedy tokens equal | pass |", "|---|---|---|---|---|---|---|"]
        for item in result["comparisons"]:
            dump = item["dump"]
            greedy = "yes" if item["greedyEqual"] else "near tie" if all(d["nearTie"] for p in item["prompts"] for d in p["greedyDivergences"]) else "no"
            lines.append(f"| {item['reference']}{' (informational)' if item.get('informational') else ''} | {dump['device']}, K/V {dump['kvCache']} | {item['tolerance']:.2g} | {item['nextTokenMaxAbsDiff']:.2e} | {item['allStepsMaxAbsDiff']:.2e} | {greedy} | {'yes' if item['pass'] else 'no'} |")
    if result.get("sensitivity"):
        lines += ["", "Sensitivity (numpy reference with a deliberate mistake; each must be detected):"]
        for item in result["sensitivity"]:
            lines.append(f"- {item['mistake']}: " + ("not applicable here" if not item["applicable"] else f"{'detected' if item['detected'] else 'NOT detected'} (max abs diff {item['allStepsMaxAbsDiff']:.2e})"))
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    arguments = parse_arguments(argv)
    try:
        code, result = run(arguments)
    except (OSError, ValueError) as error:
        print(f"check.py: {error}", file=sys.stderr)
        return 2
    summary = markdown(result)
    if arguments.out:
        os.makedirs(os.path.dirname(os.path.abspath(arguments.out)), exist_ok=True)
        with open(arguments.out, "w", encoding="utf-8") as file:
            json.dump(result, file, indent=1, default=float)
        with open(os.path.splitext(arguments.out)[0] + ".md", "w", encoding="utf-8") as file:
            file.write(summary)
    sys.stdout.write(summary)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
