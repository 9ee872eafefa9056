"""TensorFlow Lite for Microcontrollers (TFLM) bundle: the C/C++ sources a firmware compiles.

A bundle is a directory `exports/<name>/tflm/` holding

- `<id>_model_data.h/.cc`: the full-integer `.tflite` file as `alignas(16) const unsigned char
  <id>_model[]` and its length `<id>_model_len`;
- `<id>_ops.h`: `<id>_register_ops(resolver)` adding exactly the file's operators to a
  `tflite::MicroMutableOpResolver<N>` (N = their count), generated from the file's op list;
- `<id>_settings.h`: input shape, input/output scale and zero point, class labels and the tensor
  arena size (measured in the TFLM runtime, plus a documented margin);
- `README.md`: the C++ that loads and runs the model, and the pixel preprocessing.

`<id>` is the export name made a valid C/C++ identifier (`c_identifier`). This module only
writes text; running the model in TFLM and measuring its arena is `export.tflm_runtime`.

Example:

>>> files = bundle_sources(BundleSpec(name="lenet5-fashion_mnist", model=content, ...))
>>> sorted(files)[:2]
['README.md', 'lenet5_fashion_mnist_model_data.cc']
>>> write_bundle("exports/lenet5-fashion_mnist/tflm", files)
"""

from __future__ import annotations

import dataclasses
import keyword
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from training.atomic import atomic_write_directory

# C and C++ keywords an identifier must not equal (a model called "class" gets "m_class").
_KEYWORDS_TEXT = (
    "alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t "
    "char16_t char32_t class compl concept const consteval constexpr constinit const_cast "
    "continue co_await co_return co_yield decltype default delete do double dynamic_cast "
    "else enum explicit export extern false float for friend goto if inline int long "
    "mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected "
    "public register reinterpret_cast requires restrict return short signed sizeof static "
    "static_assert static_cast struct switch template this thread_local throw true try "
    "typedef typeid typename union unsigned using virtual void volatile wchar_t while xor "
    "xor_eq"
)
_CXX_KEYWORDS = frozenset(_KEYWORDS_TEXT.split())
# TFLite builtin names whose MicroMutableOpResolver method is not the plain CamelCase of the
# name (tensorflow/lite/micro/micro_mutable_op_resolver.h).
_ADD_METHOD_EXCEPTIONS = {
    "PADV2": "AddPadV2",
    "CUMSUM": "AddCumSum",
    "BATCH_MATMUL": "AddBatchMatMul",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
}
# Spare bytes added to the measured arena in the settings header (see `arena_with_margin`).
ARENA_SLACK_BYTES = 256
ARENA_ALIGNMENT = 16


def c_identifier(name: str) -> str:
    """A valid C/C++ identifier from an export name.

    Args:
        name: e.g. `"lenet5-fashion_mnist"`.

    Returns:
        Characters other than letters, digits and `_` replaced by `_`, a leading digit or a
        keyword guarded (`"1x"` -> `"m_1x"`, `"class"` -> `"m_class"`), no leading, trailing or
        double underscores (reserved in C++ or leading to `__` in derived names).

    Raises:
        ValueError: `name` has no letter or digit.
    """
    ident = re.sub(r"[^0-9A-Za-z_]", "_", name).strip("_")
    ident = re.sub(r"_+", "_", ident)
    if not re.search(r"[0-9A-Za-z]", ident):
        raise ValueError(f"Cannot make a C identifier from {name!r}: it has no letter or digit")
    if ident[0].isdigit() or ident in _CXX_KEYWORDS or keyword.iskeyword(ident):
        ident = "m_" + ident
    return ident


def resolver_method(op_name: str) -> str:
    """The `tflite::MicroMutableOpResolver` method registering a TFLite builtin op.

    Args:
        op_name: the builtin's name as LiteRT reports it, e.g. `"CONV_2D"`.

    Returns:
        e.g. `"AddConv2D"`, `"AddFullyConnected"`, `"AddAveragePool2D"`, `"AddPadV2"`.
    """
    if op_name in _ADD_METHOD_EXCEPTIONS:
        return _ADD_METHOD_EXCEPTIONS[op_name]
    words = []
    for word in op_name.split("_"):
        if re.fullmatch(r"\d+D", word):
            words.append(word)
        elif word == "ND":
            words.append("Nd")
        else:
            words.append(word.capitalize())
    return "Add" + "".join(words)


def arena_with_margin(measured_bytes: int, scratch_bytes: int = 0) -> int:
    """The arena size written to the settings header: the measured minimum plus a margin.

    Args:
        measured_bytes: the smallest arena the TFLM runtime (reference kernels) ran in.
        scratch_bytes: the largest scratch buffer an optimized kernel may request that the
            reference kernels do not (`export.tflm_fit.cmsis_nn_scratch_bytes`: CMSIS-NN's
            int8 convolution im2col buffer, 2 x kernel_h x kernel_w x C_in int16 values, 600
            bytes for LeNet-5's C3; average pooling's C_in int32 sums).

    Returns:
        measured + scratch + 256 bytes of slack for the arena's start being aligned
        differently on the board, rounded up to 16. TFLM's bookkeeping structs hold
        pointers, 8 bytes on this 64-bit host and 4 on a Cortex-M, so that part of the
        measurement is already an over-estimate for a 32-bit MCU.
    """
    total = measured_bytes + scratch_bytes + ARENA_SLACK_BYTES
    return -(-total // ARENA_ALIGNMENT) * ARENA_ALIGNMENT


@dataclasses.dataclass(frozen=True)
class BundleSpec:
    """What the generated sources describe.

    Args:
        name: export name (`source.name`); the C identifiers derive from it.
        model: the full-integer `.tflite` bytes (int8 input and output).
        ops: the model's operators in execution order (`tflite_op_names`).
        input_shape: the input tensor's shape, batch first, e.g. `(1, 28, 28, 1)`.
        input_scale, input_zero_point: the int8 input's quantization.
        output_scale, output_zero_point: the int8 output's quantization.
        output_shape: the output tensor's shape, batch first.
        labels: class names (empty for a reconstruction model).
        arena_measured_bytes: the smallest arena the TFLM runtime ran the model in.
        arena_scratch_bytes: optimized kernels' largest scratch buffer (`arena_with_margin`).
        task: `"classification"` or `"reconstruction"`.
        mean, std: the normalization the model applies inside (documentation only).
    """

    name: str
    model: bytes
    ops: Sequence[str]
    input_shape: Sequence[int]
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    output_shape: Sequence[int]
    labels: Sequence[str]
    arena_measured_bytes: int
    arena_scratch_bytes: int = 0
    task: str = "classification"
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None

    @property
    def ident(self) -> str:
        return c_identifier(self.name)

    @property
    def unique_ops(self) -> list[str]:
        return list(dict.fromkeys(self.ops))

    @property
    def arena_bytes(self) -> int:
        return arena_with_margin(self.arena_measured_bytes, self.arena_scratch_bytes)


def _c_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if 32 <= ord(c) < 127 else f"\\x{ord(c):02x}" for c in escaped) + '"'


def _guard(ident: str, what: str) -> str:
    return f"{ident}_{what}_H_".upper()


def model_data_header(spec: BundleSpec) -> str:
    """`<id>_model_data.h`: declarations of the model array and its length."""
    guard = _guard(spec.ident, "model_data")
    return (
        f"// Generated by `python -m export` (convzoo) for {spec.name}: do not edit.\n"
        f"#ifndef {guard}\n#define {guard}\n\n"
        "// The full-integer .tflite file, 16-byte aligned as TFLM requires.\n"
        f"extern const unsigned char {spec.ident}_model[];\n"
        f"extern const unsigned int {spec.ident}_model_len;\n\n"
        f"#endif  // {guard}\n"
    )


def model_data_source(spec: BundleSpec, per_line: int = 12) -> str:
    """`<id>_model_data.cc`: the model bytes as an aligned constant array (flash)."""
    lines = [
        ", ".join(f"0x{b:02x}" for b in spec.model[i : i + per_line])
        for i in range(0, len(spec.model), per_line)
    ]
    body = ",\n    ".join(lines)
    return (
        f"// Generated by `python -m export` (convzoo) for {spec.name}: do not edit.\n"
        f'#include "{spec.ident}_model_data.h"\n\n'
        f"alignas(16) const unsigned char {spec.ident}_model[] = {{\n    {body}\n}};\n"
        f"const unsigned int {spec.ident}_model_len = {len(spec.model)};\n"
    )


def ops_header(spec: BundleSpec) -> str:
    """`<id>_ops.h`: a resolver type sized to the file's ops and a function adding them."""
    guard = _guard(spec.ident, "ops")
    ops = spec.unique_ops
    calls = "\n".join(
        f"  if (resolver.{resolver_method(op)}() != kTfLiteOk) return kTfLiteError;  // {op}"
        for op in ops
    )
    return (
        f"// Generated by `python -m export` (convzoo) for {spec.name}: do not edit.\n"
        f"// Registers exactly the {len(ops)} operators the model uses: {', '.join(ops)}.\n"
        f"#ifndef {guard}\n#define {guard}\n\n"
        '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n\n'
        f"constexpr unsigned int k{_camel(spec.ident)}OpCount = {len(ops)};\n"
        f"using {_camel(spec.ident)}OpResolver =\n"
        f"    tflite::MicroMutableOpResolver<k{_camel(spec.ident)}OpCount>;\n\n"
        f"inline TfLiteStatus {spec.ident}_register_ops({_camel(spec.ident)}OpResolver& "
        f"resolver) {{\n{calls}\n  return kTfLiteOk;\n}}\n\n"
        f"#endif  // {guard}\n"
    )


def _camel(ident: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in ident.split("_") if part)


def settings_header(spec: BundleSpec) -> str:
    """`<id>_settings.h`: shapes, quantization, labels and the arena size as constants."""
    guard, p = _guard(spec.ident, "settings"), spec.ident
    dims = ", ".join(str(int(d)) for d in spec.input_shape)
    out_dims = ", ".join(str(int(d)) for d in spec.output_shape)
    labels = ",\n    ".join(_c_string(label) for label in spec.labels)
    label_block = (
        f"constexpr int {p}_num_labels = {len(spec.labels)};\n"
        f"constexpr const char* {p}_labels[{len(spec.labels)}] = {{\n    {labels}\n}};\n"
        if spec.labels
        else f"constexpr int {p}_num_labels = 0;  // {spec.task}: no class labels\n"
    )
    return (
        f"// Generated by `python -m export` (convzoo) for {spec.name}: do not edit.\n"
        f"#ifndef {guard}\n#define {guard}\n\n"
        f"// Input: int8 {'x'.join(str(int(d)) for d in spec.input_shape)} (NHWC). Feed raw "
        "pixels p in [0, 255]:\n"
        f"//   q = clamp(round(p / {p}_input_scale) + {p}_input_zero_point, -128, 127)\n"
        "// The model normalizes inside (its first ops), so no mean/std here.\n"
        f"constexpr int {p}_input_dims = {len(spec.input_shape)};\n"
        f"constexpr int {p}_input_shape[{len(spec.input_shape)}] = {{{dims}}};\n"
        f"constexpr float {p}_input_scale = {spec.input_scale!r}f;\n"
        f"constexpr int {p}_input_zero_point = {spec.input_zero_point};\n\n"
        "// Output: int8; real value = (q - zero_point) * scale "
        f"({'logits' if spec.task == 'classification' else 'pixels'}).\n"
        f"constexpr int {p}_output_dims = {len(spec.output_shape)};\n"
        f"constexpr int {p}_output_shape[{len(spec.output_shape)}] = {{{out_dims}}};\n"
        f"constexpr float {p}_output_scale = {spec.output_scale!r}f;\n"
        f"constexpr int {p}_output_zero_point = {spec.output_zero_point};\n\n"
        f"{label_block}\n"
        f"// Tensor arena: {spec.arena_measured_bytes} bytes measured as the smallest arena the\n"
        "// TFLM runtime (tflite-micro Python interpreter, reference kernels, 64-bit host)\n"
        "// allocated and invoked this model in, plus the largest scratch buffer CMSIS-NN's\n"
        f"// kernels would add ({spec.arena_scratch_bytes} bytes: im2col of a convolution,\n"
        f"// pooling sums) and {ARENA_SLACK_BYTES} bytes for alignment, rounded up to 16.\n"
        "// The model array carries an OfflineMemoryAllocation plan (unfused activations such\n"
        "// as TANH computed in place); TFLM's allocator applies it, the size assumes it.\n"
        f"constexpr int {p}_arena_measured_bytes = {spec.arena_measured_bytes};\n"
        f"constexpr int {p}_arena_size = {spec.arena_bytes};\n\n"
        f"#endif  // {guard}\n"
    )


def readme(spec: BundleSpec) -> str:
    """`README.md`: what the files are, the ~20 lines of C++ that run the model, preprocessing."""
    p, camel = spec.ident, _camel(spec.ident)
    h, w, c = (int(d) for d in spec.input_shape[1:4])
    result = (
        f"  int best = 0;  // arg-max of the int8 logits = arg-max of the real logits\n"
        f"  for (int i = 1; i < {p}_num_labels; ++i)\n"
        "    if (output->data.int8[i] > output->data.int8[best]) best = i;\n"
        f'  printf("%s\\n", {p}_labels[best]);\n'
        if spec.labels
        else "  // output->data.int8: the reconstructed image; pixel = (q - zero_point) * scale\n"
    )
    normalization = ""
    if spec.mean and spec.std:
        mean = ", ".join(f"{m:g}" for m in spec.mean)
        normalization = f" (mean {mean}, std {', '.join(f'{s:g}' for s in spec.std)})"
    op_list = ", ".join(spec.unique_ops)
    return f"""# {spec.name}: TensorFlow Lite for Microcontrollers bundle

Generated by `python -m export`. The model is the full-integer int8 TFLite file (int8 input
and output, calibrated like `tflite_int8`), verified in the TFLM runtime before it was written.

| file | what |
| --- | --- |
| `{p}_model_data.h/.cc` | `{p}_model[]` ({len(spec.model):,} bytes of flash), `{p}_model_len` |
| `{p}_ops.h` | `{p}_register_ops()`: the {len(spec.unique_ops)} ops it uses ({op_list}) |
| `{p}_settings.h` | input shape and quantization, output quantization, labels, `{p}_arena_size` |

Tensor arena: `{p}_arena_size` = {spec.arena_bytes:,} bytes: {spec.arena_measured_bytes:,} bytes
measured in the TFLM runtime (the smallest arena it allocated and invoked the model in) plus
the largest scratch buffer CMSIS-NN's optimized kernels would request
({spec.arena_scratch_bytes:,} bytes; the reference kernels measured here use none) and
{ARENA_SLACK_BYTES} bytes for alignment.
The model carries an `OfflineMemoryAllocation` metadata plan that TFLM's allocator applies:
activations not fused into a convolution (e.g. TANH) are computed in place, which saves a
copy of the largest feature map.

Preprocessing: feed raw pixels `p` in [0, 255], {h}x{w}x{c}, row-major NHWC, as
`q = clamp(round(p / {p}_input_scale) + {p}_input_zero_point, -128, 127)`. The model
normalizes inside{normalization}: no mean/std, no resize beyond {h}x{w}.

```cpp
#include <cmath>
#include <cstdio>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "{p}_model_data.h"
#include "{p}_ops.h"
#include "{p}_settings.h"

alignas(16) static uint8_t tensor_arena[{p}_arena_size];

int classify(const uint8_t* pixels) {{  // {h * w * c} raw pixels
  static {camel}OpResolver resolver;
  static bool registered = ({p}_register_ops(resolver) == kTfLiteOk);
  if (!registered) return -1;
  static tflite::MicroInterpreter interpreter(
      tflite::GetModel({p}_model), resolver, tensor_arena, {p}_arena_size);
  if (interpreter.AllocateTensors() != kTfLiteOk) return -1;  // arena too small
  TfLiteTensor* input = interpreter.input(0);
  for (int i = 0; i < {h * w * c}; ++i) {{
    int q = (int)lroundf(pixels[i] / {p}_input_scale) + {p}_input_zero_point;
    input->data.int8[i] = (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);
  }}
  if (interpreter.Invoke() != kTfLiteOk) return -1;
  TfLiteTensor* output = interpreter.output(0);
{result}  return 0;
}}
```

Add the TFLM library to the build (Arduino: the `Arduino_TensorFlowLite` library; ESP-IDF:
`esp-tflite-micro`; STM32/Cortex-M: TFLM built with `OPTIMIZED_KERNEL_DIR=cmsis_nn`).
"""


def bundle_sources(spec: BundleSpec) -> dict[str, str]:
    """Every file of the bundle: file name -> text.

    Example:

    >>> sorted(bundle_sources(spec))
    ['README.md', 'm_model_data.cc', 'm_model_data.h', 'm_ops.h', 'm_settings.h']
    """
    p = spec.ident
    return {
        f"{p}_model_data.h": model_data_header(spec),
        f"{p}_model_data.cc": model_data_source(spec),
        f"{p}_ops.h": ops_header(spec),
        f"{p}_settings.h": settings_header(spec),
        "README.md": readme(spec),
    }


def write_bundle(directory: str | os.PathLike, files: Mapping[str, str | bytes]) -> Path:
    """Writes `files` (name -> text or bytes) as `directory`, atomically (see
    `training.atomic.atomic_write_directory`: an existing bundle is replaced only once the new
    one is complete).

    Returns:
        The bundle directory.
    """

    def fill(tmp: Path) -> None:
        for name, content in files.items():
            (tmp / name).write_bytes(content if isinstance(content, bytes) else content.encode())

    return atomic_write_directory(directory, fill)
