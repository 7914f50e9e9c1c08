"""Export a trained Sparse4D's tracking frame to ONNX (opset 17, one nv::MSDA per decoder).

    python tools/export.py CONFIG CHECKPOINT --out model.onnx [--verify-cams 4 8]
    python tools/export.py CONFIG CHECKPOINT --out model.onnx --contract tao-v2.2

The default contract is ours (mmsparse4d/deploy/graph_io.py): NVIDIA's inputs and outputs
plus the time interval as an input where the model reads it (not for a velocity in m/s),
every decoder's outputs. ``--contract tao-v2.2`` writes NVIDIA TAO's deployable_v2.2
contract instead (mmsparse4d/deploy/tao_contract.py: TAO's input and output names, the
interval baked in), for NVIDIA's deployment stack; a model that cannot meet it (6 decoders,
900 queries, 600 carried, 256 channels, 11-D anchors) is refused. Batch and camera count
are dynamic. The host-side settings (image size, cache, decay, classes, ...) are stored in
the file's metadata, which ``Sparse4DTracker`` and ``tools/infer.py --backend onnxruntime``
read (our contract). With ``--verify-cams`` the exported file is run in ONNX Runtime
against PyTorch for those camera counts.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Only what the checks need here: the model, torch and ONNX load after them (seconds).
from mmsparse4d.deploy.names import CONTRACTS, TAO_CONTRACT  # noqa: E402
from mmsparse4d.utils.input_error import InputError, run_tool  # noqa: E402
from mmsparse4d.utils.output_paths import check_output_file  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument(
        '--contract',
        choices=CONTRACTS,
        default=CONTRACTS[0],
        help="the graph's inputs and outputs: ours (default) or NVIDIA TAO's deployable_v2.2",
    )
    parser.add_argument(
        '--trace-cams',
        type=int,
        default=None,
        help='cameras of the tracing example (the graph takes any count; default 2, '
        f'20 for {TAO_CONTRACT} as TAO traces)',
    )
    parser.add_argument(
        '--verify-cams',
        type=int,
        nargs='*',
        default=[],
        help='compare ONNX Runtime with PyTorch at these camera counts',
    )
    return parser.parse_args(argv)


def export(args) -> Path:
    for path, what in ((args.config, 'config'), (args.checkpoint, 'checkpoint')):
        if not Path(path).is_file():
            raise InputError(f'{what} not found', path=path)
    out = Path(args.out)
    if out.suffix != '.onnx':
        raise InputError(f'--out must end in .onnx, got {out}')
    check_output_file(out, '--out')
    trace = [] if args.trace_cams is None else [args.trace_cams]
    if min(trace + args.verify_cams, default=1) < 1:
        raise InputError(
            f'--trace-cams and --verify-cams must be >= 1, got {args.trace_cams} and '
            f'{" ".join(map(str, args.verify_cams))}'
        )
    import torch
    from mmengine.config import Config

    from mmsparse4d.apis import load_model
    from mmsparse4d.deploy import (
        INPUT_NAMES,
        OnnxRuntimeBackend,
        Sparse4DFrameGraph,
        TaoFrameGraph,
        example_inputs,
        export_tracking_graph,
        tao_example_inputs,
    )
    from mmsparse4d.deploy.tao_contract import INPUT_NAMES as TAO_INPUT_NAMES

    cfg = Config.fromfile(args.config)
    model = load_model(cfg, args.checkpoint, owner='export')  # checks the checkpoint fits
    tao = args.contract == TAO_CONTRACT
    graph = TaoFrameGraph(model) if tao else Sparse4DFrameGraph(model)  # refuses a misfit
    too_many = [cams for cams in trace + args.verify_cams if cams > model.head.max_num_cams]
    if too_many:
        raise InputError(
            f'--trace-cams / --verify-cams {too_many[0]}: the model takes at most '
            f'{model.head.max_num_cams} cameras (model.head.deformable_model.max_num_cams)'
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    proto = export_tracking_graph(model, cfg, out, args.trace_cams, args.contract)
    print(
        f'{out}: contract {args.contract}, {len(proto.graph.node)} nodes, opset 17, '
        f'{sum(n.op_type == "MSDA" for n in proto.graph.node)} nv::MSDA nodes'
    )
    if tao and model.head.reid_branch is not None:
        print(f'{out}: the re-identification outputs are not part of {TAO_CONTRACT}: left out')
    if args.verify_cams:
        backend = OnnxRuntimeBackend(out)
        graph.eval()
        for cams in args.verify_cams:
            if tao:
                feeds, names = tao_example_inputs(backend.metadata, num_cams=cams), TAO_INPUT_NAMES
            else:
                feeds, names = example_inputs(backend.metadata, num_cams=cams), INPUT_NAMES
            with torch.no_grad():
                expected = graph(*[torch.from_numpy(feeds[n]) for n in names])
            got = backend(feeds)
            pairs = zip(graph.output_names, expected, strict=True)
            error = max(float((got[name] - value).abs().max()) for name, value in pairs)
            print(f'{cams} cameras: largest difference ONNX Runtime vs PyTorch {error:.2e}')
    return out


def main(argv=None):
    export(parse_args(argv))


if __name__ == '__main__':
    run_tool('export', main)
