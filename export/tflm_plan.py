"""An offline memory plan for TFLM: elementwise activations computed in place.

TFLM's online planner gives every activation tensor its own buffer, so an activation op that
is not fused into the convolution before it (LeNet-5's TANH: TFLite fuses only ReLU-like
activations) keeps two copies of the largest feature map alive: conv1's output and tanh's,
2 x 28x28x6 = 9,408 bytes of LeNet-5's 12,720-byte arena (measured with `print_allocations`).

TFLM reads an `OfflineMemoryAllocation` metadata entry (int32: version 0, subgraph 0, tensor
count, then one arena offset per tensor, -1 for tensors it should plan itself) and places the
tensors there. `plan_in_place` writes such a plan in which the output of a unary elementwise
op (TANH, LOGISTIC, RELU, RELU6, and RESHAPE, a copy) shares its input's buffer when the input
is read by nothing else afterwards; the rest is a greedy first-fit by size, like TFLM's own
planner. In place is safe for these kernels because each output element depends only on the
input element at the same index, which the kernel reads before writing (TFLM's reference and
CMSIS-NN builds use the same elementwise loops); the exporter still proves each bundle by
comparing TFLM's outputs with LiteRT's on every test image.

Example:

>>> planned = plan_in_place(content)
>>> measure_arena(planned, image).bytes < measure_arena(content, image).bytes
True
"""

from __future__ import annotations

import numpy as np

IN_PLACE_OPS = frozenset({"TANH", "LOGISTIC", "RELU", "RELU6", "RESHAPE"})
PLAN_METADATA = "OfflineMemoryAllocation"
ALIGNMENT = 16
_ITEM_BYTES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1, 10: 8, 16: 4}


def _op_names(model) -> dict[int, str]:
    from tensorflow.lite.python import schema_py_generated as schema

    codes = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return {
        i: codes.get(max(c.builtinCode, c.deprecatedBuiltinCode), "?")
        for i, c in enumerate(model.operatorCodes)
    }


def _lifetimes(subgraph, constant: set[int]) -> dict[int, list[int]]:
    """tensor -> [first op that needs it, last op that needs it] for non-constant tensors."""
    n_ops = len(subgraph.operators)
    life: dict[int, list[int]] = {int(t): [0, 0] for t in subgraph.inputs}
    for index, op in enumerate(subgraph.operators):
        for t in op.outputs:
            life.setdefault(int(t), [index, index])
        for t in op.inputs:
            if int(t) >= 0 and int(t) not in constant:
                life.setdefault(int(t), [index, index])[1] = index
    for t in subgraph.outputs:
        life[int(t)][1] = n_ops
    return life


def _sizes(subgraph, tensors) -> dict[int, int]:
    sizes = {}
    for t in tensors:
        tensor = subgraph.tensors[t]
        sizes[t] = int(np.prod(tensor.shape)) * _ITEM_BYTES.get(tensor.type, 4)
    return sizes


def _groups(subgraph, names, life, sizes) -> dict[int, int]:
    """tensor -> the tensor whose buffer it uses (itself, or an in-place op's input)."""
    root = {t: t for t in life}
    graph_io = {int(t) for t in (*subgraph.inputs, *subgraph.outputs)}
    for index, op in enumerate(subgraph.operators):
        inputs = [int(t) for t in op.inputs if int(t) in life]
        if names[op.opcodeIndex] not in IN_PLACE_OPS or len(inputs) != 1 or len(op.outputs) != 1:
            continue
        source, target = inputs[0], int(op.outputs[0])
        if source in graph_io or target in graph_io or life[source][1] != index:
            continue
        if sizes[source] == sizes[target]:
            root[target] = root[source]
    return root


def _place(spans: dict[int, tuple[int, int, int]]) -> dict[int, int]:
    """Greedy first-fit, largest first: group -> offset, no two live groups overlapping."""
    placed: list[tuple[int, int, int, int]] = []  # offset, size, first, last
    offsets = {}
    for group, (size, first, last) in sorted(spans.items(), key=lambda kv: -kv[1][0]):
        offset = 0
        for o, s, f, la in sorted(placed):
            live_together = not (last < f or la < first)
            if live_together and offset < o + s and o < offset + size:
                offset = -(-(o + s) // ALIGNMENT) * ALIGNMENT
        placed.append((offset, size, first, last))
        offsets[group] = offset
    return offsets


def plan_offsets(content: bytes) -> list[int]:
    """One arena offset per tensor of subgraph 0 (-1: constant, not planned)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    subgraph = model.subgraphs[0]
    constant = {
        i
        for i, t in enumerate(subgraph.tensors)
        if model.buffers[t.buffer].data is not None and len(model.buffers[t.buffer].data)
    }
    life = _lifetimes(subgraph, constant)
    sizes = _sizes(subgraph, life)
    root = _groups(subgraph, _op_names(model), life, sizes)
    spans: dict[int, tuple[int, int, int]] = {}
    for t, group in root.items():
        size, first, last = spans.get(group, (0, life[t][0], life[t][1]))
        spans[group] = (max(size, sizes[t]), min(first, life[t][0]), max(last, life[t][1]))
    offsets = _place(spans)
    return [offsets[root[i]] if i in root else -1 for i in range(len(subgraph.tensors))]


def plan_in_place(content: bytes) -> bytes:
    """`content` with an `OfflineMemoryAllocation` metadata entry (replacing any): in-place
    elementwise activations, the rest first-fit. The operators and weights are unchanged."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    offsets = plan_offsets(content)
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    buffer = schema.BufferT()
    words = np.array([0, 0, len(offsets), *offsets], dtype="<i4")
    buffer.data = np.frombuffer(words.tobytes(), dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = PLAN_METADATA, len(model.buffers) - 1
    kept = [m for m in (model.metadata or []) if _name(m) != PLAN_METADATA]
    model.metadata = [*kept, entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _name(entry) -> str:
    return entry.name.decode() if isinstance(entry.name, bytes) else entry.name


def strip_plan(content: bytes) -> bytes:
    """`content` without its `OfflineMemoryAllocation` entry: TFLM plans every tensor itself."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    model.metadata = [m for m in (model.metadata or []) if _name(m) != PLAN_METADATA] or None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
