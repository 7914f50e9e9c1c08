"""Score a checkpoint on synthetic scenes nobody tuned on: test seeds drawn fresh at
evaluation time (the default), a given list of test seeds, or the validation set.

    python tools/evaluate_synthetic.py CONFIG CHECKPOINT --work-dir work_dirs/fresh
        [--fresh 6 | --seeds S [S ...] | --validation] [--frames 300] [--size 480 270]
        [--device cuda] [--workers 16] [--score-threshold T] [--cfg-options KEY=VALUE ...]

Each scene's layout follows from its seed (``mmsparse4d.datasets.synthetic.protocol``: 4-12
cameras, 8-25 objects, h5 for even seeds and mp4 for odd ones). The scenes are generated in
parallel (``tools/make_synthetic.py``), tracked one after the other (``tools/infer.py``, its
default origin) and scored (HOTA with 3D IoU as the AI City challenge computes it, and
centre-distance mAP). Prints markdown tables (per scene, where the missed objects are
against the checkpoint's anchors, mean and spread, per class) and
writes ``summary.json`` in the work dir. Training and validation seeds are refused as test
seeds; ``--validation`` scores the validation set, on which choices are made.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from mmengine.config import DictAction

from mmsparse4d.datasets.aicity import KNOWN_CLASSES
from mmsparse4d.datasets.synthetic.protocol import (
    VALIDATION_SEEDS,
    SceneSpec,
    draw_fresh_seeds,
    scene_spec,
    seed_role,
)
from mmsparse4d.datasets.synthetic.render_scenes import render_scenes
from mmsparse4d.engine.cfg_options import check_cfg_options
from mmsparse4d.engine.checkpoint_files import read_checkpoint
from mmsparse4d.engine.checkpoint_settings import ANCHOR_KEY
from mmsparse4d.engine.cli import read_config
from mmsparse4d.evaluation.scene_scores import FAR_FROM_ANCHORS, score_scene
from mmsparse4d.utils.devices import check_device
from mmsparse4d.utils.input_error import InputError, run_tool
from mmsparse4d.utils.output_paths import check_output_dir

REPO = Path(__file__).resolve().parents[1]
# HOTA_every_class: a class with ground truth and no prediction in a scene scored 0 there,
# where the protocol's HOTA skips it (so leaving a hard class out cannot look better).
METRICS = ('HOTA', 'DetA', 'AssA', 'mAP', 'HOTA_every_class')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', type=Path)
    parser.add_argument('checkpoint', type=Path)
    parser.add_argument('--work-dir', type=Path, required=True)
    which = parser.add_mutually_exclusive_group()
    which.add_argument('--fresh', type=int, default=6, help='test seeds to draw (default 6)')
    which.add_argument('--seeds', type=int, nargs='+', help='test seeds (to repeat a run)')
    which.add_argument('--validation', action='store_true', help='the validation seeds')
    parser.add_argument('--frames', type=int, default=300)
    parser.add_argument('--size', type=int, nargs=2, default=(480, 270), metavar=('W', 'H'))
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--workers', type=int, default=os.cpu_count(), help='rendering processes')
    parser.add_argument(
        '--score-threshold', type=float, help="passed to tools/infer.py (default: infer.py's)"
    )
    parser.add_argument('--cfg-options', nargs='+', default=[], help='passed to tools/infer.py')
    return parser.parse_args(argv)


def choose_seeds(args) -> tuple[list[int], str]:
    """The seeds to score and what they are (``'fresh'``, ``'test'``, ``'validation'``)."""
    if args.validation:
        return list(VALIDATION_SEEDS), 'validation'
    if args.seeds is None:
        if args.fresh < 1:
            raise InputError(f'--fresh {args.fresh}: must be at least 1')
        return draw_fresh_seeds(args.fresh), 'fresh'
    for seed in args.seeds:
        role = seed_role(seed)
        if role in ('training', 'validation'):
            raise InputError(
                f'--seeds: {seed} is a {role} seed; a test seed must be one no choice was '
                'made on (draw fresh ones: leave --seeds out)'
            )
        if seed < 0:
            raise InputError(f'--seeds: {seed} is negative')
    if len(set(args.seeds)) < len(args.seeds):
        raise InputError(f'--seeds: {" ".join(map(str, args.seeds))} repeats a seed')
    return list(args.seeds), 'test'


def check_args(args) -> None:
    for path in (args.config, args.checkpoint):
        if not path.is_file():
            raise InputError('no such file', path=path)
    if args.frames < 1 or min(args.size) < 16 or args.workers < 1:
        raise InputError(
            f'--frames must be >= 1, --size >= 16 pixels, --workers >= 1; got {args.frames}, '
            f'{" ".join(map(str, args.size))} and {args.workers}'
        )
    check_output_dir(args.work_dir, '--work-dir')
    check_device(args.device)
    if args.cfg_options:  # checked before any scene is rendered (infer.py checks them again)
        options = argparse.ArgumentParser()
        options.add_argument('--cfg-options', nargs='+', action=DictAction)
        parsed = options.parse_args(['--cfg-options', *args.cfg_options]).cfg_options
        check_cfg_options(read_config(str(args.config)), parsed)


def checkpoint_anchors_xy(checkpoint: Path) -> np.ndarray:
    """[A, 2] the anchors' centres (model frame, metres) the checkpoint carries."""
    loaded = read_checkpoint(checkpoint)
    state = loaded.get('state_dict', loaded)
    if ANCHOR_KEY not in state:
        raise InputError(f'holds no {ANCHOR_KEY}: not a Sparse4D checkpoint', path=checkpoint)
    return state[ANCHOR_KEY].float().numpy()[:, :2]


def track(args, spec: SceneSpec, scene: Path, out: Path) -> float:
    """``tools/infer.py`` on one scene; returns its frames per second."""
    command = [
        sys.executable,
        str(REPO / 'tools/infer.py'),
        str(args.config),
        str(args.checkpoint),
        str(scene),
        '--out-dir',
        str(out),
        '--device',
        args.device,
        '--overwrite',
    ]
    if args.score_threshold is not None:
        command += ['--score-threshold', str(args.score_threshold)]
    if args.cfg_options:
        command += ['--cfg-options', *args.cfg_options]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        raise RuntimeError(
            f'infer.py failed on seed {spec.seed}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}'
        )
    return spec.num_frames / (time.perf_counter() - start)


def spread(values: list[float]) -> dict:
    values = np.asarray(values, dtype=np.float64)
    return {
        'mean': float(values.mean()),
        'std': float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        'min': float(values.min()),
        'max': float(values.max()),
    }


def summarise(specs: list[SceneSpec], scores: list[dict]) -> dict:
    aggregate = {m: spread([s[m] for s in scores]) for m in METRICS}
    seen = {c for s in scores for c in s['per_class']}
    classes = [c for c in KNOWN_CLASSES if c in seen]
    per_class = {}
    for name in classes:
        present = [s['per_class'][name] for s in scores if name in s['per_class']]
        per_class[name] = {
            'scenes': len(present),
            'HOTA': spread([p['HOTA'] for p in present]),
            'AP': spread([p['AP'] for p in present]),
        }
    return {'aggregate': aggregate, 'per_class': per_class}


def share(part: int, whole: int) -> str:
    return f'{100 * part / whole:.0f}%' if whole else '-'


def print_tables(role: str, specs: list[SceneSpec], scores: list[dict], summary: dict) -> None:
    print(f'\n{len(specs)} {role} scenes\n')
    print('| seed | cameras | objects | video | HOTA | DetA | AssA | mAP | HOTA every class |')
    print('|---:|---:|---:|---|---:|---:|---:|---:|---:|')
    for spec, s in zip(specs, scores, strict=True):
        print(
            f'| {spec.seed} | {spec.num_cameras} | {spec.num_objects} | {spec.rgb_format} | '
            f'{s["HOTA"]:.2f} | {s["DetA"]:.2f} | {s["AssA"]:.2f} | {s["mAP"]:.3f} | '
            f'{s["HOTA_every_class"]:.2f} |'
        )
    print(
        '\nground-truth rows without a prediction of their class within 2 m: all of them, '
        'those with a box of another class there, and the missed share of the rows seen by '
        f'0-1, 2-3 and 4+ cameras and of those > {FAR_FROM_ANCHORS:g} m from every anchor\n'
    )
    print('| seed | missed | other class | 0-1 cameras | 2-3 | 4+ | far from anchors |')
    print('|---:|---:|---:|---:|---:|---:|---:|')
    for spec, s in zip(specs, scores, strict=True):
        m = s['misses']
        print(
            f'| {spec.seed} | {share(m["missed"], m["rows"])} | '
            f'{share(m["confused"], m["rows"])} | '
            + ' | '.join(
                share(*[sum(m['by_cameras'][k][i] for k in keys) for i in (1, 0)])
                for keys in (('0', '1'), ('2', '3'), ('4', '5+'))
            )
            + f' | {share(m["far_missed"], m["far_rows"])} of {share(m["far_rows"], m["rows"])} |'
        )
    print('\n| metric | mean | std | min | max |\n|---|---:|---:|---:|---:|')
    for metric, values in summary['aggregate'].items():
        digits = 3 if metric == 'mAP' else 2
        cells = ' | '.join(f'{values[k]:.{digits}f}' for k in ('mean', 'std', 'min', 'max'))
        print(f'| {metric} | {cells} |')
    print(
        '\n| class | scenes | HOTA mean | HOTA std | AP mean | AP std |\n'
        '|---|---:|---:|---:|---:|---:|'
    )
    for name, values in summary['per_class'].items():
        print(
            f'| {name} | {values["scenes"]} | {values["HOTA"]["mean"]:.2f} | '
            f'{values["HOTA"]["std"]:.2f} | {values["AP"]["mean"]:.3f} | '
            f'{values["AP"]["std"]:.3f} |'
        )
    print(
        '\n(a class with ground truth and no prediction in a scene counts HOTA 0 there, and in '
        "HOTA every class; the protocol's HOTA skips it)"
    )


def main(argv=None) -> dict:
    args = parse_args(argv)
    check_args(args)
    seeds, role = choose_seeds(args)
    print(f'{role} seeds: {" ".join(map(str, seeds))}', flush=True)
    specs = [scene_spec(seed, args.frames, tuple(args.size)) for seed in seeds]
    raw, out = args.work_dir / 'raw', args.work_dir / 'out'
    raw.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    anchors_xy = checkpoint_anchors_xy(args.checkpoint)
    render_scenes(specs, raw, args.workers)
    scores = []
    for spec in specs:
        rate = track(args, spec, raw / spec.name, out)
        scene_scores = score_scene(
            raw / spec.name,
            out / f'{spec.name}_submission.txt',
            out / f'{spec.name}_tracks.npz',
            anchors_xy,
        )
        scores.append(scene_scores)
        print(
            f'seed {spec.seed}: {spec.num_cameras} cameras, {spec.num_objects} objects, '
            f'{spec.rgb_format}: HOTA {scene_scores["HOTA"]:.2f}, mAP {scene_scores["mAP"]:.3f} '
            f'({rate:.1f} frames/s)',
            flush=True,
        )
    summary = summarise(specs, scores)
    print_tables(role, specs, scores, summary)
    content = {
        'config': str(args.config),
        'checkpoint': str(args.checkpoint),
        'role': role,
        'seeds': seeds,
        'scenes': [
            dict(vars(spec), name=spec.name, **s) for spec, s in zip(specs, scores, strict=True)
        ],
        **summary,
    }
    (args.work_dir / 'summary.json').write_text(json.dumps(content, indent=1))
    print(f'\nsummary: {args.work_dir / "summary.json"}')
    return content


if __name__ == '__main__':
    run_tool('evaluate_synthetic', main)
