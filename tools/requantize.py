"""Re-quantize a GGUF file's weights (e.g. the embedded Q4_1 -> Q8_0) with gguf-py, a real weights change to guard:
every quantized tensor is dequantized to float32 and quantized again in the new type, as llama.cpp's
``llama_model_quantize`` with ``allow_requantize`` does; metadata and the tokenizer are copied as they are (F32 and F16
tensors too). Made at test time (``make weights-upgrade``), never committed.
Usage: python tools/requantize.py IN.gguf OUT.gguf Q8_0"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy


def requantize(source: Path, target: Path, kind: str) -> Path:
    import gguf
    from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter, quants

    wanted = GGMLQuantizationType[kind]
    reader = GGUFReader(source)
    arch = str(bytes(reader.fields["general.architecture"].parts[-1]), "utf-8")
    writer = GGUFWriter(target, arch=arch, endianess=reader.endianess)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        kind_of = field.types[0]
        sub = field.types[-1] if kind_of == GGUFValueType.ARRAY else None
        value = field.contents()
        if field.name == "general.file_type":  # what the file mostly holds now
            value = int(gguf.LlamaFileType[f"MOSTLY_{kind}"])
        writer.add_key_value(field.name, value, kind_of, sub_type=sub)
    for tensor in reader.tensors:
        shape = tuple(int(d) for d in reversed(tensor.shape))  # numpy order
        if tensor.tensor_type in (GGMLQuantizationType.F32, GGMLQuantizationType.F16) or shape[-1] % 32:
            writer.add_tensor(tensor.name, numpy.asarray(tensor.data), raw_dtype=tensor.tensor_type)
            continue
        values = quants.dequantize(tensor.data, tensor.tensor_type).reshape(shape)
        packed = quants.quantize(values.astype(numpy.float32), wanted)
        writer.add_tensor(tensor.name, packed, raw_shape=packed.shape, raw_dtype=wanted)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return target


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python tools/requantize.py IN.gguf OUT.gguf TYPE   (TYPE: Q8_0, Q4_0, Q5_0, ...)")
    made = requantize(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
    print(f"{made}: {sys.argv[1]} re-quantized to {sys.argv[3]} ({made.stat().st_size / 2**20:.1f} MiB)")
