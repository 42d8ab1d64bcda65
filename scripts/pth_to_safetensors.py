#!/usr/bin/env python3
"""Converts an official CAE PyTorch checkpoint (.pth) to a CAE-Java model checkpoint.

    python3 scripts/pth_to_safetensors.py CHECKPOINT.pth OUT.safetensors --config CONFIG.json

CONFIG.json holds the model's configuration with the official argument names (img_size,
patch_size, embed_dim, depth, num_heads, ...; `./cae config base` prints one to edit). The
model's state dict is taken from the checkpoint's "model" entry (or "state_dict", or the
checkpoint itself when it is a state dict); a "module." prefix (DistributedDataParallel) is
removed; optimizer state, epoch and args are left out. Every tensor is written as F32 (F16 and
BF16 are widened) under its official name, with the configuration in the metadata: `cae probe`,
`cae export`, `cae grad` and `cae pretrain --init` read the result.

With PyTorch installed, the checkpoint is read by torch.load(..., weights_only=True). Without
it (or when the checkpoint holds objects weights_only refuses, such as the training args),
the zip archive that torch.save writes is read directly: its pickle is loaded with every
global other than the tensor and storage types replaced by an inert stand-in, so nothing in
the file is executed. Standard library only.
"""

import argparse
import json
import pickle
import struct
import sys
import zipfile

# torch storage class name -> (safetensors dtype, bytes per element)
_STORAGES = {
    "FloatStorage": ("F32", 4),
    "HalfStorage": ("F16", 2),
    "BFloat16Storage": ("BF16", 2),
    "DoubleStorage": ("F64", 8),
    "LongStorage": ("I64", 8),
    "IntStorage": ("I32", 4),
    "ShortStorage": ("I16", 2),
    "CharStorage": ("I8", 1),
    "ByteStorage": ("U8", 1),
    "BoolStorage": ("BOOL", 1),
}
_TORCH_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64", "int64": "I64",
                 "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}
_SIZES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


class Tensor:
    """A tensor as raw little-endian bytes of a dtype, C-contiguous."""

    def __init__(self, dtype, shape, data):
        self.dtype, self.shape, self.data = dtype, list(shape), data


class _Storage:
    def __init__(self, dtype, key):
        self.dtype, self.key = dtype, key


class _Rebuilt:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


class _Inert:
    """Stands in for any class or function the pickle names that is not a tensor or storage."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Inert()

    def __setstate__(self, state):
        pass


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *rest):
    return _Rebuilt(storage, storage_offset, size, stride)


class _StorageType:
    def __init__(self, name):
        self.name = name


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor_v2
        if module == "torch._utils" and name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
            return lambda data, *rest: data
        if module == "torch" and name in _STORAGES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return dict
        return _Inert

    def persistent_load(self, pid):
        # ('storage', storage type, key, location, numel)
        kind, storage_type, key = pid[0], pid[1], pid[2]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {kind!r}")
        if isinstance(storage_type, _StorageType):
            dtype = _STORAGES[storage_type.name][0]
        else:  # torch >= 2: a torch.dtype object, which this reader does not build
            raise pickle.UnpicklingError("unknown storage type in the checkpoint")
        return _Storage(dtype, key)


def _contiguous_bytes(raw, itemsize, offset, size, stride):
    n = 1
    for d in size:
        n *= d
    expected, acc = [], 1
    for d in reversed(size):
        expected.insert(0, acc)
        acc *= d
    if tuple(stride) == tuple(expected) or n <= 1:
        start = offset * itemsize
        return raw[start:start + n * itemsize]
    out = bytearray()
    index = [0] * len(size)
    for _ in range(n):
        at = offset + sum(i * s for i, s in zip(index, stride))
        out += raw[at * itemsize:(at + 1) * itemsize]
        for k in reversed(range(len(size))):
            index[k] += 1
            if index[k] < size[k]:
                break
            index[k] = 0
    return bytes(out)


def _read_zip(path):
    """The object torch.save wrote, its tensors as Tensor, without torch."""
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pkl:
            raise ValueError(f"{path}: not a torch.save zip archive (no data.pkl)")
        root = pkl[0][: -len("data.pkl")]
        obj = _Unpickler(z.open(pkl[0])).load()
        cache = {}

        def convert(o):
            if isinstance(o, _Rebuilt):
                key = o.storage.key
                if key not in cache:
                    cache[key] = z.read(f"{root}data/{key}")
                dtype = o.storage.dtype
                data = _contiguous_bytes(cache[key], _SIZES[dtype], o.offset, o.size, o.stride)
                return Tensor(dtype, o.size, data)
            if isinstance(o, dict):
                return {k: convert(v) for k, v in o.items()}
            if isinstance(o, (list, tuple)):
                return type(o)(convert(v) for v in o)
            return o

        return convert(obj)


def _read_torch(path):
    import torch  # noqa: F401 (optional)

    obj = torch.load(path, map_location="cpu", weights_only=True)

    def convert(o):
        if isinstance(o, torch.Tensor):
            t = o.detach().contiguous()
            dtype = _TORCH_DTYPES[str(t.dtype).replace("torch.", "")]
            if dtype == "BF16":
                data = t.view(torch.int16).numpy().tobytes()
            else:
                data = t.numpy().tobytes()
            return Tensor(dtype, list(t.shape), data)
        if isinstance(o, dict):
            return {k: convert(v) for k, v in o.items()}
        return o

    return convert(obj)


def read_checkpoint(path):
    try:
        import torch  # noqa: F401
    except ImportError:
        return _read_zip(path)
    try:
        return _read_torch(path)
    except Exception:  # objects weights_only refuses (training args): read the tensors directly
        return _read_zip(path)


def _to_f32(t):
    n = len(t.data) // _SIZES[t.dtype]
    if t.dtype == "F32":
        return t.data
    if t.dtype == "F16":
        return struct.pack(f"<{n}f", *struct.unpack(f"<{n}e", t.data))
    if t.dtype == "BF16":
        halves = struct.unpack(f"<{n}H", t.data)
        return struct.pack(f"<{n}I", *(h << 16 for h in halves))
    if t.dtype == "F64":
        return struct.pack(f"<{n}f", *struct.unpack(f"<{n}d", t.data))
    raise ValueError(f"not a floating-point tensor: {t.dtype}")


def state_dict_of(checkpoint):
    for key in ("model", "state_dict"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            return checkpoint[key]
    if isinstance(checkpoint, dict) and checkpoint and all(isinstance(v, Tensor) for v in checkpoint.values()):
        return checkpoint
    raise ValueError("no state dict in the checkpoint (looked for 'model', 'state_dict', or a dict of tensors)")


def write_safetensors(tensors, metadata, path):
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name in sorted(tensors):
        dtype, shape, data = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="the PyTorch checkpoint (.pth)")
    p.add_argument("out", help="the safetensors file to write")
    p.add_argument("--config", required=True, help="JSON file with the model configuration (official names)")
    a = p.parse_args(argv)
    with open(a.config, encoding="utf-8") as f:
        config = json.load(f)
    if not isinstance(config, dict):
        sys.exit(f"pth_to_safetensors: {a.config} does not hold a JSON object")
    state = state_dict_of(read_checkpoint(a.checkpoint))
    tensors = {}
    skipped = []
    for name, t in state.items():
        if not isinstance(t, Tensor):
            skipped.append(name)
            continue
        key = name[len("module."):] if name.startswith("module.") else name
        if t.dtype not in ("F32", "F16", "BF16", "F64"):
            skipped.append(name)
            continue
        tensors[key] = ("F32", t.shape, _to_f32(t))
    write_safetensors(tensors, {"config": json.dumps(config, separators=(",", ":"))}, a.out)
    print(f"pth_to_safetensors: {len(tensors)} tensors from {a.checkpoint} -> {a.out}"
          + (f"; left out (not floating-point tensors): {', '.join(skipped)}" if skipped else ""))


if __name__ == "__main__":
    main()
