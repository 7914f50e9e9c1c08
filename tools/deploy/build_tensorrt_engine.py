"""Build a TensorRT engine from an exported frame graph (tools/export.py) with the nv::MSDA
plugin (ops/tensorrt), and write the host's metadata next to it (ENGINE.json).

    python tools/deploy/build_tensorrt_engine.py model.onnx model.engine \\
        --plugin build/tensorrt/libmmsparse4d_tensorrt.so --cams 1 8 20 [--fp16]

Needs TensorRT 10 (the ``tensorrt`` Python package) and an NVIDIA GPU; neither is available
on this project's CI or GPU machines, so this script is documented but has not been run.
The camera count is dynamic within the profile (--cams MIN OPT MAX); batch is 1.
"""

import argparse
import ctypes
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mmsparse4d.deploy import read_onnx_metadata  # noqa: E402
from mmsparse4d.deploy.graph_io import INPUT_NAMES, input_shapes  # noqa: E402
from mmsparse4d.utils.input_error import InputError, run_tool  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('onnx')
    parser.add_argument('engine')
    parser.add_argument('--plugin', required=True, help='the nv::MSDA plugin library (.so)')
    parser.add_argument(
        '--cams', type=int, nargs=3, default=(1, 8, 20), metavar=('MIN', 'OPT', 'MAX')
    )
    parser.add_argument('--fp16', action='store_true')
    parser.add_argument('--workspace-gib', type=float, default=8.0)
    return parser.parse_args(argv)


def build(args) -> Path:
    onnx_path, plugin = Path(args.onnx), Path(args.plugin)
    for path, what in ((onnx_path, 'ONNX file'), (plugin, 'plugin library')):
        if not path.is_file():
            raise InputError(f'{what} not found', path=path)
    metadata = read_onnx_metadata(onnx_path)
    low, opt, high = args.cams
    if not 1 <= low <= opt <= high <= metadata['max_num_cams']:
        raise InputError(
            f'--cams must satisfy 1 <= MIN <= OPT <= MAX <= {metadata["max_num_cams"]} '
            f'(max_num_cams of the model), got {" ".join(map(str, args.cams))}'
        )
    try:
        import tensorrt as trt
    except ImportError as error:
        raise ImportError(
            'build_tensorrt_engine: the tensorrt Python package is not installed '
            '(TensorRT 10 on a machine with an NVIDIA GPU)'
        ) from error
    ctypes.CDLL(str(plugin))
    logger = trt.Logger(trt.Logger.WARNING)
    trt.init_libnvinfer_plugins(logger, '')
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise InputError(f'TensorRT cannot parse it: {errors}', path=onnx_path)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(args.workspace_gib * 2**30))
    if args.fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    # Batch 1; the camera count within the profile; every other size is the model's.
    shapes = [input_shapes(metadata, 1, cams) for cams in (low, opt, high)]
    # The network's own inputs: a model whose velocity is in m/s has no interval inputs.
    for name in (network.get_input(i).name for i in range(network.num_inputs)):
        if name not in INPUT_NAMES:
            raise InputError(
                f'unknown input {name!r} (expected some of {list(INPUT_NAMES)}): not a graph of '
                'tools/export.py?',
                path=onnx_path,
            )
        profile.set_shape(name, *(shape[name] for shape in shapes))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError('build_tensorrt_engine: TensorRT failed to build the engine')
    engine = Path(args.engine)
    engine.parent.mkdir(parents=True, exist_ok=True)
    engine.write_bytes(bytes(serialized))
    engine.with_suffix('.json').write_text(json.dumps(metadata, indent=1))
    size = engine.stat().st_size / 2**20
    print(f'{engine} ({size:.1f} MiB), metadata {engine.with_suffix(".json")}')
    return engine


def main(argv=None):
    build(parse_args(argv))


if __name__ == '__main__':
    run_tool('build_tensorrt_engine', main)
