#!/usr/bin/env python3
"""Writes a model from a GGUF preamble + tensor manifest made by bench/gpu/pack.mjs (hostWeightsManifest).

For a GPU host without Node.js: the preamble (header, metadata, tensor table) comes from our
TypeScript generator; this fills the tensor data with the same kind of values (F16 weights with a
fixed exponent and random sign/mantissa, F32 norms at 1, SSM A at -1) so the model computes
finite numbers. Usage: fill-weights.py PREAMBLE MANIFEST OUT
"""
import json
import os
import sys

import numpy as np

preamble_path, manifest_path, out_path = sys.argv[1:4]
manifest = json.load(open(manifest_path))
rng = np.random.default_rng(1)
block = ((rng.integers(0, 1 << 16, size=32 << 20, dtype=np.uint32) & 0x83FF) | (9 << 10)).astype(np.uint16).tobytes()  # 64 MiB of F16 in [2^-6, 2^-5)
# Written beside the target and renamed when complete: an existing OUT is always a whole model.
part_path = out_path + '.part'
with open(part_path, 'wb') as out:
    out.write(open(preamble_path, 'rb').read())
    base = out.tell()
    for tensor in manifest['tensors']:
        out.seek(base + tensor['offset'])
        # Zero from zeroFromByte on (a padded vocabulary's unused tokens' output rows: the generator's silentUnusedRows).
        filled = tensor.get('zeroFromByte', tensor['bytes'])
        remaining = filled
        if tensor['type'] == 'F16':
            while remaining > 0:
                piece = min(remaining, len(block))
                out.write(block[:piece])
                remaining -= piece
        else:
            value = -1.0 if tensor['name'].endswith('ssm_a') else (0.0 if 'bias' in tensor['name'] else 1.0)
            out.write(np.full(remaining // 4, value, dtype=np.float32).tobytes())
        zeros = tensor['bytes'] - filled
        while zeros > 0:
            piece = min(zeros, len(block))
            out.write(bytes(piece))
            zeros -= piece
    out.truncate(base + manifest['dataBytes'])
os.replace(part_path, out_path)
print(out_path, base + manifest['dataBytes'])
