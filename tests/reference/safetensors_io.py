"""Minimal safetensors reader/writer (no dependency on the `safetensors` package).

Format: 8-byte little-endian u64 header length N, then N bytes of UTF-8 JSON that starts
with '{' (space-padded to a multiple of 8), then the data section. Each entry is
"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]} with offsets
relative to the data section, contiguous from 0, no holes or overlaps. An optional
"__metadata__" entry maps strings to strings. Scalars have shape [].
"""

import json
import struct

import numpy as np

MAX_HEADER_BYTES = 100_000_000

# safetensors dtype name <-> little-endian numpy dtype
_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NAMES = {(dt.kind, dt.itemsize): name for name, dt in _DTYPES.items()}


def _to_numpy(value):
    """Accept numpy arrays, torch tensors and Python scalars."""
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch here
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def save_file(tensors, path, metadata=None):
    """Write `tensors` (name -> array) sorted by name; `metadata` is a str -> str map."""
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"metadata must map str to str, got {k!r}: {type(v).__name__}")
        header["__metadata__"] = dict(metadata)
    blobs = []
    offset = 0
    for name in sorted(tensors):
        if name == "__metadata__":
            raise ValueError("a tensor may not be named __metadata__")
        arr = _to_numpy(tensors[name])
        key = (arr.dtype.kind, arr.dtype.itemsize)
        if key not in _NAMES:
            raise TypeError(f"tensor {name!r}: unsupported dtype {arr.dtype}")
        dtype_name = _NAMES[key]
        data = np.ascontiguousarray(arr, dtype=_DTYPES[dtype_name]).tobytes()
        header[name] = {"dtype": dtype_name, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def load_file(path):
    """Read a safetensors file -> (dict name -> numpy array, metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: {len(raw)} bytes, too short for a safetensors header")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > MAX_HEADER_BYTES or 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} is invalid for a {len(raw)}-byte file")
    text = raw[8:8 + n].decode("utf-8")
    if not text.startswith("{"):
        raise ValueError(f"{path}: header does not start with '{{'")
    header = json.loads(text)
    metadata = header.pop("__metadata__", None) or {}
    data = memoryview(raw)[8 + n:]
    entries = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    expected_begin = 0
    tensors = {}
    for name, info in entries:
        dtype_name = info["dtype"]
        if dtype_name not in _DTYPES:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {dtype_name}")
        dtype = _DTYPES[dtype_name]
        shape = tuple(int(s) for s in info["shape"])
        begin, end = (int(x) for x in info["data_offsets"])
        numel = int(np.prod(shape, dtype=np.int64))
        if begin != expected_begin:
            raise ValueError(f"{path}: tensor {name!r} begins at {begin}, expected {expected_begin}")
        if end - begin != numel * dtype.itemsize:
            raise ValueError(f"{path}: tensor {name!r} spans {end - begin} bytes, "
                             f"expected {numel * dtype.itemsize} for {dtype_name}{list(shape)}")
        tensors[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape).copy()
        expected_begin = end
    if expected_begin != len(data):
        raise ValueError(f"{path}: data section is {len(data)} bytes, tensors cover {expected_begin}")
    return tensors, metadata
