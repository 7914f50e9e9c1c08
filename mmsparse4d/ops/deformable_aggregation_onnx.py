"""ONNX export of the MSDA operator as one ``nv::MSDA`` node per call.

The node is the contract of NVIDIA's deploy stack: domain ``nv``, op type ``MSDA``, the
five inputs in the operator's order, no attributes, one output [B, A, C]. Both exporters
are covered: the TorchScript one through a registered symbolic, the dynamo one through a
translation function; the schema is registered with ``onnx`` so that the checker and
shape inference know the node. ``ops/onnxruntime`` implements it for ONNX Runtime and
``ops/tensorrt`` for TensorRT.
"""

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import onnx
import torch
from onnx import defs

from .deformable_aggregation import OP_NAME

MSDA_DOMAIN = 'nv'
MSDA_OP_TYPE = 'MSDA'
MSDA_DOMAIN_VERSION = 1
ONNX_OPSET = 17
# onnx 1.23 writes IR 14 by default, which onnxruntime-gpu 1.31 rejects; opset 17 needs
# IR 8 or later, and IR 10 loads in onnxruntime 1.17 and every later release.
ONNX_IR_VERSION = 10
INPUT_NAMES = ('features', 'spatial_shape', 'scale_start_index', 'sampling_location', 'weights')

ORT_LIBRARY_ENV = 'MMSPARSE4D_ORT_LIBRARY'
_REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ORT_LIBRARY = _REPO_ROOT / 'build' / 'onnxruntime' / 'libmmsparse4d_onnxruntime.so'


def register_msda_schema() -> None:
    """Register the ``nv::MSDA`` schema with onnx (once per process)."""
    if defs.has(MSDA_OP_TYPE, MSDA_DOMAIN):
        return
    float_types = ['tensor(float)', 'tensor(float16)', 'tensor(bfloat16)', 'tensor(double)']
    param = defs.OpSchema.FormalParameter
    schema = defs.OpSchema(
        MSDA_OP_TYPE,
        MSDA_DOMAIN,
        MSDA_DOMAIN_VERSION,
        doc='Multi-scale deformable aggregation over cameras, levels and points (Sparse4D).',
        inputs=[
            param('features', 'T', '[B, F, C] packed channel-last feature maps'),
            param('spatial_shape', 'I', '[N, L, 2] (H, W) per camera and level'),
            param('scale_start_index', 'I', '[N, L] first row of each block in F'),
            param('sampling_location', 'T', '[B, A, P, N, 2] normalised (x, y)'),
            param('weights', 'T', '[B, A, P, N, L, G]'),
        ],
        outputs=[param('output', 'T', '[B, A, C]')],
        type_constraints=[
            ('T', float_types, 'floating inputs and output'),
            ('I', ['tensor(int32)', 'tensor(int64)'], 'metadata'),
        ],
    )
    defs.register_schema(schema)


def _torchscript_symbolic(
    g, features, spatial_shape, scale_start_index, sampling_location, weights
):
    from torch.onnx import symbolic_helper

    output = g.op(
        f'{MSDA_DOMAIN}::{MSDA_OP_TYPE}',
        features,
        spatial_shape,
        scale_start_index,
        sampling_location,
        weights,
    )
    feature_sizes = symbolic_helper._get_tensor_sizes(features)
    location_sizes = symbolic_helper._get_tensor_sizes(sampling_location)
    if feature_sizes and location_sizes:
        sizes = [location_sizes[0], location_sizes[1], feature_sizes[2]]
        output.setType(features.type().with_sizes(sizes))
    else:
        output.setType(features.type())
    return output


def _dynamo_translation(features, spatial_shape, scale_start_index, sampling_location, weights):
    import onnxscript

    nv = onnxscript.values.Opset(domain=MSDA_DOMAIN, version=MSDA_DOMAIN_VERSION)
    return nv.MSDA(features, spatial_shape, scale_start_index, sampling_location, weights)


def _register_torchscript_symbolic() -> None:
    torch.onnx.register_custom_op_symbolic(OP_NAME, _torchscript_symbolic, 9)


def _torchscript_export(model, args, path, input_names, output_names, dynamic_axes) -> None:
    torch.onnx.export(
        model,
        args,
        str(path),
        dynamo=False,
        opset_version=ONNX_OPSET,
        input_names=list(input_names),
        output_names=list(output_names),
        dynamic_axes=dynamic_axes,
        custom_opsets={MSDA_DOMAIN: MSDA_DOMAIN_VERSION},
    )


def export_onnx(
    model: torch.nn.Module,
    args: tuple,
    path: str | os.PathLike,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, str]] | None = None,
    dynamic_shapes=None,
    exporter: str = 'dynamo',
) -> onnx.ModelProto:
    """Export ``model`` with MSDA as ``nv::MSDA``, opset 17, IR version 10, and check it.

    Args:
        exporter: ``'dynamo'`` (torch.export; give ``dynamic_shapes``) or
            ``'torchscript'`` (give ``dynamic_axes``).

    Returns:
        onnx.ModelProto: the saved, checked model.
    """
    register_msda_schema()
    path = Path(path)
    model = model.eval()
    if exporter == 'torchscript':
        _register_torchscript_symbolic()
        with warnings.catch_warnings():
            # Chosen on purpose (dynamic camera count through traced shapes); torch warns
            # that this exporter is deprecated, and the tracer about shape arithmetic.
            warnings.simplefilter('ignore', DeprecationWarning)
            warnings.simplefilter('ignore', torch.jit.TracerWarning)
            _torchscript_export(model, args, path, input_names, output_names, dynamic_axes)
    elif exporter == 'dynamo':
        program = torch.onnx.export(
            model,
            args,
            dynamo=True,
            opset_version=ONNX_OPSET,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_shapes=dynamic_shapes,
            custom_translation_table={
                torch.ops.mmsparse4d.deformable_aggregation.default: _dynamo_translation
            },
        )
        program.save(str(path), external_data=False)
    else:
        raise ValueError(
            f"export_onnx: exporter must be 'dynamo' or 'torchscript', got {exporter!r}"
        )
    proto = onnx.load(str(path))
    proto.ir_version = ONNX_IR_VERSION
    if not any(o.domain == MSDA_DOMAIN for o in proto.opset_import):
        proto.opset_import.append(onnx.helper.make_opsetid(MSDA_DOMAIN, MSDA_DOMAIN_VERSION))
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return proto


def onnxruntime_library_path() -> Path:
    """The ONNX Runtime custom-op library implementing ``nv::MSDA``.

    ``$MMSPARSE4D_ORT_LIBRARY`` if set, else ``build/onnxruntime/`` of the repository.

    Raises:
        FileNotFoundError: if it is not built, saying how to build it.
    """
    path = Path(os.environ.get(ORT_LIBRARY_ENV, DEFAULT_ORT_LIBRARY))
    if not path.is_file():
        raise FileNotFoundError(
            f'the ONNX Runtime custom-op library {path} is not built: run `make onnxruntime-ops` '
            f'in the repository root (or set ${ORT_LIBRARY_ENV})'
        )
    return path


def onnxruntime_session(model_path: str | os.PathLike, providers: Sequence[str] | None = None):
    """An ``onnxruntime.InferenceSession`` with the ``nv::MSDA`` library registered.

    Its CPU thread pool takes ``$OMP_NUM_THREADS`` threads where that is set, as torch's
    does (ONNX Runtime itself ignores the variable and takes every physical core, which
    oversubscribes the cores where several processes share them); unset, ONNX Runtime's
    default.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    threads = os.environ.get('OMP_NUM_THREADS')
    if threads is not None:
        if threads.isdigit() and int(threads) > 0:
            options.intra_op_num_threads = int(threads)
        else:
            warnings.warn(
                f'OMP_NUM_THREADS={threads!r} is not a positive integer: ONNX Runtime takes '
                'its default threads',
                stacklevel=2,
            )
    options.register_custom_ops_library(str(onnxruntime_library_path()))
    return onnxruntime.InferenceSession(
        str(model_path), options, providers=list(providers or ['CPUExecutionProvider'])
    )
