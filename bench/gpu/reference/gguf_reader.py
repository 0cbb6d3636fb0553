"""A numpy-only GGUF reader: metadata and tensors of a GGUF v2/v3 file.

Enough for the files our generator writes (F32 and F16 tensors; see model-gen/src/gguf-writer.ts)
plus BF16; quantized types are refused by name. Tensors are read-only views into a memory map,
shaped the numpy way: GGUF lists dimensions fastest first (ne0 = the contiguous one), numpy lists
them slowest first, so a GGUF [n_embd, n_vocab] matrix is a numpy (n_vocab, n_embd) array, which is
already the [out, in] layout of a torch nn.Linear weight.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# gguf.h `gguf_type`: code -> (struct format, byte size) for scalars.
_SCALARS: dict[int, tuple[str, int]] = {
    0: ("<B", 1), 1: ("<b", 1), 2: ("<H", 2), 3: ("<h", 2), 4: ("<I", 4), 5: ("<i", 4),
    6: ("<f", 4), 7: ("<?", 1), 10: ("<Q", 8), 11: ("<q", 8), 12: ("<d", 8),
}
_NUMPY_SCALARS: dict[int, str] = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "<u1", 10: "<u8", 11: "<i8", 12: "<f8"}
_STRING, _ARRAY = 8, 9

# ggml.h `ggml_type` for the unquantized types; everything else is refused.
GGML_TYPES: dict[int, tuple[str, str]] = {0: ("F32", "<f4"), 1: ("F16", "<f2"), 30: ("BF16", "<u2")}


@dataclass(frozen=True)
class GgufTensor:
    name: str
    # GGUF order: ne0 (contiguous) first.
    dims: tuple[int, ...]
    type_name: str
    # Byte offset from the start of the file.
    offset: int


class GgufFile:
    """A parsed GGUF file. `metadata` maps key -> value (lists for arrays); `tensors` keeps file order."""

    def __init__(self, path: str):
        self.path = path
        self._map = np.memmap(path, dtype=np.uint8, mode="r")
        self._position = 0
        if bytes(self._map[:4]) != GGUF_MAGIC:
            raise ValueError(f"{path}: not a GGUF file (magic {bytes(self._map[:4])!r})")
        self._position = 4
        self.version = self._scalar(4)
        if self.version not in (2, 3):
            raise ValueError(f"{path}: GGUF version {self.version} is not supported (2 and 3 are)")
        tensor_count = self._scalar(10)
        metadata_count = self._scalar(10)
        self.metadata: dict[str, Any] = {}
        for _ in range(metadata_count):
            key = self._string()
            self.metadata[key] = self._value(self._scalar(4))
        alignment = int(self.metadata.get("general.alignment", DEFAULT_ALIGNMENT))
        infos = []
        for _ in range(tensor_count):
            name = self._string()
            dims = tuple(self._scalar(10) for _ in range(self._scalar(4)))
            type_code = self._scalar(4)
            relative_offset = self._scalar(10)
            if type_code not in GGML_TYPES:
                raise ValueError(f"{path}: tensor {name} has ggml type {type_code}; only F32, F16 and BF16 are read")
            infos.append((name, dims, GGML_TYPES[type_code][0], relative_offset))
        data_start = -(-self._position // alignment) * alignment
        self.tensors: dict[str, GgufTensor] = {
            name: GgufTensor(name, dims, type_name, data_start + relative_offset) for name, dims, type_name, relative_offset in infos
        }

    # --- header parsing ---------------------------------------------------------------------

    def _take(self, size: int) -> bytes:
        chunk = bytes(self._map[self._position:self._position + size])
        if len(chunk) != size:
            raise ValueError(f"{self.path}: truncated header at byte {self._position}")
        self._position += size
        return chunk

    def _scalar(self, code: int) -> Any:
        fmt, size = _SCALARS[code]
        return struct.unpack(fmt, self._take(size))[0]

    def _string(self) -> str:
        return self._take(self._scalar(10)).decode("utf-8")

    def _value(self, code: int) -> Any:
        if code == _STRING:
            return self._string()
        if code == _ARRAY:
            item_code = self._scalar(4)
            count = self._scalar(10)
            if item_code == _STRING:
                return [self._string() for _ in range(count)]
            if item_code == _ARRAY:
                return [self._value(self._scalar(4)) for _ in range(count)]
            dtype = np.dtype(_NUMPY_SCALARS[item_code])
            values = np.frombuffer(self._take(count * dtype.itemsize), dtype=dtype)
            return [bool(v) for v in values] if item_code == 7 else values.tolist()
        if code not in _SCALARS:
            raise ValueError(f"{self.path}: unknown metadata type {code}")
        return self._scalar(code)

    # --- access -----------------------------------------------------------------------------

    def shape(self, name: str) -> tuple[int, ...]:
        """The numpy shape of a tensor (GGUF dims reversed)."""
        return tuple(reversed(self.tensors[name].dims))

    def raw(self, name: str) -> np.ndarray:
        """The stored values as a read-only view (F16 as float16, BF16 as its uint16 bits)."""
        tensor = self.tensors[name]
        dtype = np.dtype(_dtype_of(tensor.type_name))
        count = int(np.prod(tensor.dims, dtype=np.int64))
        return np.frombuffer(self._map, dtype=dtype, count=count, offset=tensor.offset).reshape(self.shape(name))

    def f32(self, name: str) -> np.ndarray:
        """A tensor converted to float32 (exact for F16 and BF16)."""
        tensor = self.tensors[name]
        values = self.raw(name)
        if tensor.type_name == "BF16":
            return (values.astype(np.uint32) << 16).view(np.float32)
        return values.astype(np.float32)

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)


def _dtype_of(type_name: str) -> str:
    for name, dtype in GGML_TYPES.values():
        if name == type_name:
            return dtype
    raise KeyError(type_name)
