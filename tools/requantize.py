"""Re-quantize a GGUF file's weights (e.g. the embedded Q4_1 -> Q8_0 or Q3_K_M), a real weights change to guard.

With llama-cpp-python installed (`make llamacpp`), llama.cpp's own ``llama_model_quantize`` does it (with
``allow_requantize``): any type it knows, K-quants included, the way a GGUF user makes them. Without it, gguf-py does
what it can (Q8_0, Q4_0, Q5_0...; no K-quants): every quantized tensor dequantized to float32 and quantized again in
the new type; metadata and the tokenizer are copied as they are (F32 and F16 tensors too). Made at test time
(``make weights-upgrade``), never committed. Usage: python tools/requantize.py IN.gguf OUT.gguf Q8_0|Q3_K_M [gguf-py]"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy


def with_llama_cpp(source: Path, target: Path, kind: str) -> Path:
    """llama.cpp's quantizer, requantizing what is already quantized (two threads)."""
    import llama_cpp
    from llama_cpp._logger import set_verbose

    set_verbose(False)  # its per-tensor lines; warnings and errors still print
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind}")
    params.allow_requantize = True
    params.nthread = 2
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), params)
    if status != 0:
        sys.exit(f"llama_model_quantize({source} -> {target}, {kind}) failed with status {status}")
    return target


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
    import importlib.util
    import time

    if len(sys.argv) not in (4, 5):
        sys.exit("usage: python tools/requantize.py IN.gguf OUT.gguf TYPE [gguf-py]   (TYPE: Q8_0, Q3_K_M, Q5_0...)")
    by_gguf_py = len(sys.argv) == 5 or importlib.util.find_spec("llama_cpp") is None
    started = time.perf_counter()
    made = (requantize if by_gguf_py else with_llama_cpp)(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
    print(
        f"{made}: {sys.argv[1]} re-quantized to {sys.argv[3]} by {'gguf-py' if by_gguf_py else 'llama.cpp'} in "
        f"{time.perf_counter() - started:.1f} s ({made.stat().st_size / 2**20:.1f} MiB)"
    )
