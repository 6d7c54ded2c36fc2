"""The operators a checkpoint's programs may call: pure functions of their tensor inputs.

An exported program is a graph of operator calls, and ``torch.export`` can record any ATen
operator, including ones that act on the world (``aten.from_file(path, shared=True)`` maps a file
that a later ``copy_`` writes). So wmbench runs a program only if every call is on the lists below.
Each listed operator computes its outputs from its arguments alone: no file, network, process,
environment or global-state access, no random numbers, no uninitialized memory.

The lists were measured, not guessed: they hold every operator that the shipped baselines (LeWM in
its cpu and paper configs, PLDM), ``wmbench.testing``'s models, the README's example, transformers
with ``nn.MultiheadAttention`` and with ``F.scaled_dot_product_attention``, and a CNN with batch,
group and instance norms and pooling export to (``tests/test_checkpoint_safety.py`` keeps that
true), plus their plain relatives: other elementwise math, reductions, shape and indexing
operators, constructors of constant tensors.

On top of the name, each call is checked on its overload and its arguments:

- an overload whose schema writes into an argument (``add_``, ``relu_``, any ``out=``) is refused:
  a program may not change its inputs or weights (``wmbench.export`` rewrites in-place calls into
  their out-of-place forms, so a model using ``nn.ReLU(inplace=True)`` still exports);
- dropout is allowed only switched off (``train=False``, ``dropout_p=0``), as a model in eval mode
  exports it, and batch and instance norms only when they do not update running statistics;
- a string argument must be one of the harmless values in ``STRING_ARGUMENTS``
  (``gelu(approximate="tanh")``). No listed operator takes a storage or a generator.
"""

from __future__ import annotations

import math
import operator
import re
from typing import Any

import torch

ATEN = frozenset({
    # seen in the measured programs
    "_assert_tensor_metadata", "adaptive_avg_pool2d", "add", "alias", "avg_pool2d", "batch_norm", "broadcast_tensors", "cat",
    "chunk", "contiguous", "conv2d", "div", "dropout", "elu", "expand", "expand_as", "feature_dropout", "flatten", "full",
    "gelu", "group_norm", "instance_norm", "layer_norm", "leaky_relu", "linear", "max_pool2d", "mean", "mish", "mul",
    "permute", "pow", "relu", "reshape", "scaled_dot_product_attention", "select", "sigmoid", "silu", "slice",
    "smooth_l1_loss", "squeeze", "stack", "sub", "sum", "sym_size", "tanh", "to", "transpose", "triu", "unbind",
    "unflatten", "unsqueeze", "upsample_nearest2d", "view",
    # what wmbench.export's out-of-place rewrite turns the measured programs into
    "_native_batch_norm_legit_no_training", "clone", "split",
    # shapes, views and copies
    "_to_copy", "broadcast_to", "concat", "concatenate", "constant_pad_nd", "detach", "diag_embed", "diagonal", "flip",
    "lift_fresh_copy", "movedim", "narrow", "pad", "pixel_shuffle", "pixel_unshuffle", "reflection_pad1d",
    "reflection_pad2d", "repeat", "repeat_interleave", "replication_pad1d", "replication_pad2d", "reshape_as", "roll",
    "split_with_sizes", "swapaxes", "t", "tile", "tril", "type_as", "unfold", "view_as",
    # indexing (bounds are checked by the operators)
    "embedding", "gather", "index", "index_put", "index_select", "masked_fill", "scatter", "scatter_add", "where",
    # elementwise math
    "abs", "acos", "acosh", "addcdiv", "addcmul", "asin", "asinh", "atan", "atan2", "atanh", "bitwise_and",
    "bitwise_not", "bitwise_or", "bitwise_xor", "ceil", "clamp", "clamp_max", "clamp_min", "clip", "cos", "cosh", "eq",
    "erf", "erfc", "erfinv", "exp", "exp2", "expm1", "floor", "floor_divide", "fmax", "fmin", "fmod", "frac", "ge", "gt",
    "hypot", "isfinite", "isinf", "isnan", "le", "lerp", "log", "log10", "log1p", "log2", "logical_and", "logical_not",
    "logical_or", "logical_xor", "logit", "lt", "maximum", "minimum", "nan_to_num", "ne", "neg", "reciprocal",
    "remainder", "round", "rsqrt", "rsub", "sgn", "sign", "sin", "sinh", "sqrt", "square", "tan", "true_divide", "trunc",
    # activations
    "celu", "glu", "hardshrink", "hardsigmoid", "hardswish", "hardtanh", "log_sigmoid_forward", "prelu", "relu6",
    "selu", "softplus", "softshrink", "threshold",
    # reductions, scans and sorting
    "_log_softmax", "_softmax", "all", "amax", "amin", "any", "argmax", "argmin", "cumprod", "cumsum",
    "linalg_vector_norm", "log_softmax", "logsumexp", "max", "min", "norm", "prod", "softmax", "sort", "std", "std_mean",
    "topk", "var", "var_mean",
    # linear algebra and distances
    "addmm", "baddbmm", "bmm", "cdist", "cosine_similarity", "dot", "einsum", "matmul", "mm", "mv", "outer",
    "pairwise_distance",
    # convolution, pooling, resampling, normalization
    "adaptive_avg_pool1d", "adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d", "avg_pool1d", "avg_pool3d",
    "col2im", "conv1d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "convolution",
    "grid_sampler", "grid_sampler_2d", "im2col", "max_pool1d", "max_pool2d_with_indices", "max_pool3d",
    "native_group_norm", "native_layer_norm", "rms_norm", "upsample_bicubic2d", "upsample_bilinear2d",
    "upsample_linear1d", "upsample_nearest1d", "upsample_nearest3d",
    # losses (a cost may use them)
    "huber_loss", "l1_loss", "mse_loss",
    # constant tensors
    "arange", "eye", "full_like", "linspace", "new_full", "new_ones", "new_zeros", "ones", "ones_like", "scalar_tensor",
    "zeros", "zeros_like",
    # switched-off dropout (checked below)
    "alpha_dropout", "feature_alpha_dropout", "native_dropout",
    # symbolic shapes and the checks torch.export inserts on them
    "_assert_scalar", "sym_constrain_range", "sym_constrain_range_for_size", "sym_numel", "sym_storage_offset",
    "sym_stride",
})

HIGHER_ORDER = frozenset({"wrap_with_set_grad_enabled", "wrap_with_autocast"})  # torch.no_grad() and autocast blocks

SYMBOLIC_SHAPE_BUILTINS = frozenset(
    f"{function.__module__}.{function.__name__}"  # how torch.export writes them: "_operator.mul", "torch.sym_max"
    for function in (
        operator.eq, operator.ne, operator.le, operator.ge, operator.lt, operator.gt, operator.neg, operator.pos,
        operator.mul, operator.add, operator.sub, operator.floordiv, operator.mod, operator.pow, operator.truediv,
        operator.and_, operator.or_, operator.lshift, operator.rshift, operator.getitem, math.trunc, math.floor, math.ceil,
        math.sqrt, torch.sym_not, torch.sym_int, torch.sym_float, torch.sym_ite, torch.sym_max, torch.sym_min, torch.sym_sqrt,
    )
)

STRING_ARGUMENTS = {  # (operator, argument) -> the values it may take; higher-order operators' arguments have no name
    ("div", "rounding_mode"): re.compile("trunc|floor"),
    ("gelu", "approximate"): re.compile("none|tanh"),
    ("conv1d", "padding"): re.compile("same|valid"),
    ("conv2d", "padding"): re.compile("same|valid"),
    ("conv3d", "padding"): re.compile("same|valid"),
    ("pad", "mode"): re.compile("constant|reflect|replicate|circular"),
    ("scatter", "reduce"): re.compile("add|multiply"),
    ("einsum", "equation"): re.compile(r"[A-Za-z ,.\->]*"),
    ("_assert_scalar", "assert_msg"): re.compile("[ -~]*"),  # the message of a failed shape check
    ("wrap_with_autocast", ""): re.compile("cpu|cuda"),
}

DROPOUT = {  # operator -> (argument, the value that switches it off)
    "dropout": ("train", False),
    "feature_dropout": ("train", False),
    "alpha_dropout": ("train", False),
    "feature_alpha_dropout": ("train", False),
    "native_dropout": ("train", False),
    "scaled_dot_product_attention": ("dropout_p", 0.0),
}

RUNNING_STATISTICS = {"batch_norm": "training", "instance_norm": "use_input_stats"}  # -> the flag under which they update them

_NAME = re.compile(r"[A-Za-z0-9_.]+")
_UNSET = object()


def refused_call(target: Any, inputs: Any) -> str | None:
    """Why a program may not make the call ``target(inputs)`` (a node of the program's JSON), or None."""
    if not isinstance(target, str):
        return f"has a call to {target!r}, which is not an operator name"
    if target in SYMBOLIC_SHAPE_BUILTINS:
        return None
    parts = target.split(".")
    if len(parts) == 4 and parts[:3] == ["torch", "ops", "higher_order"] and parts[3] in HIGHER_ORDER:
        return _refused_arguments(parts[3], target, inputs, schema=None)
    if len(parts) == 5 and parts[:3] == ["torch", "ops", "aten"] and parts[3].endswith("_") and parts[3][:-1] in ATEN:
        return f"calls aten.{parts[3]}.{parts[4]}, the in-place form of aten.{parts[3][:-1]}, which writes into its argument"
    if len(parts) != 5 or parts[:3] != ["torch", "ops", "aten"] or parts[3] not in ATEN:
        shown = target.removeprefix("torch.ops.") if _NAME.fullmatch(target) else repr(target)
        return f"calls {shown}, which is not on wmbench's list of pure tensor operators"
    name, overload = parts[3:]
    packet = getattr(torch.ops.aten, name)
    if overload not in packet.overloads():
        return f"calls aten.{name} with an overload it does not have ({overload!r})"
    schema = getattr(packet, overload)._schema
    if schema.is_mutable:
        written = next((a.name for a in schema.arguments if a.alias_info is not None and a.alias_info.is_write), "")
        return f"calls aten.{name}.{overload}, which writes into its argument {written}".rstrip()
    return _refused_arguments(name, f"aten.{name}.{overload}", inputs, schema)


def _refused_arguments(name: str, call: str, inputs: Any, schema: torch.FunctionSchema | None) -> str | None:
    if not isinstance(inputs, list) or not all(isinstance(item, dict) and isinstance(item.get("arg"), dict) for item in inputs):
        return f"has a call to {call} with malformed arguments"
    arguments = {item.get("name"): item["arg"] for item in inputs}
    for item in inputs:
        strings = item["arg"].get("as_string", item["arg"].get("as_strings"))
        if strings is None:
            continue
        allowed = STRING_ARGUMENTS.get((name, item.get("name")))
        for value in strings if isinstance(strings, list) else [strings]:
            if allowed is None or not isinstance(value, str) or not allowed.fullmatch(value):
                return f"calls {call} with the string {value!r} for {item.get('name') or 'an argument'}, which is not one of its plain options"
    if name in DROPOUT:
        argument, off = DROPOUT[name]
        if _constant(arguments, argument, schema) != off:
            return f"calls {call} with {argument} other than {off}, which draws random numbers (export the model in eval mode)"
    if name in RUNNING_STATISTICS:
        flag = RUNNING_STATISTICS[name]
        updates = _constant(arguments, flag, schema) is not False
        if updates and (_constant(arguments, "running_mean", schema) is not None or _constant(arguments, "running_var", schema) is not None):
            return f"calls {call} with {flag}=True and running statistics, which it updates in place (export the model in eval mode)"
    return None


def _constant(arguments: dict[str, dict], name: str, schema: torch.FunctionSchema) -> Any:
    """The constant a call passes for an argument (its default when left out); ``_UNSET`` if it is not a constant."""
    if name not in arguments:
        declared = next((argument for argument in schema.arguments if argument.name == name), None)
        return declared.default_value if declared is not None and declared.has_default_value() else _UNSET
    if len(arguments[name]) != 1:
        return _UNSET
    ((kind, value),) = arguments[name].items()
    if kind == "as_none":
        return None
    if kind in ("as_bool", "as_float", "as_int"):
        return value
    return _UNSET  # a tensor or a symbolic value: not known before the program runs
