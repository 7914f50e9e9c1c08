"""The README's main job (``make demo``): track two generated scenes with the shipped
checkpoint and score them side by side (a scene it was trained on, and a scene drawn
fresh now that nobody tuned on), draw the fresh scene's tracks, then fine-tune the model for
a few dozen CPU iterations and show the loss fall.

    python tools/demo.py [--out data/demo] [--device cpu] [--iters 30] [--frames 40]
        [--fresh-seed S]

Every step writes under --out; running it again starts the steps afresh (the training
scene is generated once; the fresh scene is drawn again unless --fresh-seed
repeats one).
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mmsparse4d.datasets.synthetic.protocol import (
    TRAINING_SEEDS,
    SceneSpec,
    draw_fresh_seeds,
    scene_spec,
    seed_role,
)
from mmsparse4d.datasets.synthetic.render_scenes import render_scenes
from mmsparse4d.evaluation.scene_scores import score_scene
from mmsparse4d.utils.input_error import InputError, run_tool

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / 'projects/sparse4d/configs/sparse4d_oae_small_480x272_protocol_exclusion_164.py'
CHECKPOINT = REPO / 'checkpoints/sparse4d_oae_small_480x272_protocol_exclusion_164-d63677a1.pth'
# One of the checkpoint's 164 training layouts (the protocol's training seeds 0-99 and
# 108-171, 128 frames each) with 4 cameras and 11 objects, so that the CPU fine-tuning below
# stays short.
TRAINING_SEED = TRAINING_SEEDS[8]
METRICS = ('HOTA', 'DetA', 'AssA', 'mAP')


def run(*args: str) -> str:
    """Run a repository tool, echo its last lines, fail loudly with its output."""
    command = [sys.executable, *args]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        print(done.stdout[-3000:], done.stderr[-3000:], sep='\n')
        raise SystemExit(f'demo: {" ".join(args[:2])} failed (exit {done.returncode})')
    return done.stdout + done.stderr


def describe(spec: SceneSpec) -> str:
    return (
        f'seed {spec.seed} ({seed_role(spec.seed)}), {spec.num_cameras} cameras, '
        f'{spec.num_objects} objects, {spec.rgb_format}'
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=REPO / 'data/demo')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--iters', type=int, default=30)
    parser.add_argument('--frames', type=int, default=40)
    parser.add_argument('--fresh-seed', type=int, help='repeat a fresh scene (default: draw one)')
    args = parser.parse_args(argv)
    for path in (CONFIG, CHECKPOINT):
        if not path.is_file():
            raise InputError('missing from the repository (a partial clone?)', path=path)
    if args.iters < 1 or args.frames < 1:
        raise InputError(f'--iters and --frames must be >= 1, got {args.iters} and {args.frames}')
    if args.fresh_seed is not None and seed_role(args.fresh_seed) != 'fresh':
        raise InputError(
            f'--fresh-seed {args.fresh_seed} is a {seed_role(args.fresh_seed)} seed, not one '
            'of the test range (see docs/evaluation.md)'
        )
    out = args.out.resolve()
    start = time.perf_counter()
    fresh_seed = args.fresh_seed if args.fresh_seed is not None else draw_fresh_seeds(1)[0]
    scenes = {
        'training scene': scene_spec(TRAINING_SEED, args.frames),
        'fresh scene': scene_spec(fresh_seed, args.frames),
    }
    print(f'1/5 two synthetic scenes, {args.frames} frames at 480x270 each')
    for label, spec in scenes.items():
        print(f'    {label}: {describe(spec)}')
    raw = out / 'raw'
    for stale in raw.glob('Warehouse_*'):  # fresh scenes of earlier runs
        if stale.name.split('.')[0] not in {s.name for s in scenes.values()}:
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    render_scenes(list(scenes.values()), raw, workers=2)

    print(
        "2/5 tracking both with the shipped checkpoint, each around the centre of its cameras' "
        "floor (tools/infer.py's default, the frame its training scenes were converted in)"
    )
    tracked = out / 'tracks'
    for label, spec in scenes.items():
        inputs = [str(CONFIG), str(CHECKPOINT), str(raw / spec.name), '--out-dir', str(tracked)]
        log = run('tools/infer.py', *inputs, '--device', args.device, '--overwrite')
        rate = re.findall(r'\(([0-9.]+) frames/s\)', log)
        print(f'    {label}: {rate[-1] if rate else "?"} frames/s on {args.device}')
    if 'tracks smoothed over their frames' in log:
        print(
            "    the submissions' tracks smoothed over their frames (the config's track_smoothing:"
            ' centres from a local line, sizes from the median, yaws from their axial mean,'
            ' boxes on the floor)'
        )

    print('3/5 scores against the ground truth (3D IoU HOTA, centre-distance mAP)')
    scores = {}
    for label, spec in scenes.items():
        submission = tracked / f'{spec.name}_submission.txt'
        scores[label] = score_scene(
            raw / spec.name, submission, tracked / f'{spec.name}_tracks.npz'
        )
        scores[label]['seed'] = spec.seed
    (out / 'scores.json').write_text(json.dumps(scores, indent=1))
    print(f'    {"":18}' + ''.join(f'{m:>8}' for m in METRICS))
    for label, values in scores.items():
        print(f'    {label:18}' + ''.join(f'{values[m]:8.3f}' for m in METRICS))
    print('    the training scene flatters the model (it trained on it); the fresh scene is what')
    print('    a new site can expect, and one short scene varies a lot: docs/evaluation.md has')
    print('    the mean and spread over six fresh 300-frame scenes')

    fresh = scenes['fresh scene']
    scene = fresh.name
    print("4/5 pictures: cameras with boxes by track id, bird's-eye view with trajectories")
    vis = out / 'pictures'
    log = run(
        'tools/visualize.py',
        str(raw / scene),
        str(tracked / f'{scene}_tracks.npz'),
        '--out-dir',
        str(vis),
    )
    print(f'    {log.strip().splitlines()[-1]}')

    print(f'5/5 fine-tuning on the training scene for {args.iters} iterations (CPU, batch 1)')
    ovpkl = out / 'ovpkl'
    shutil.rmtree(ovpkl, ignore_errors=True)
    run(
        'tools/create_data.py',
        str(raw / scenes['training scene'].name),
        '--out',
        str(ovpkl / 'train'),
        '--data-root',
        str(out / 'raw'),
        '--anchors',
        '300',
    )
    work = out / 'finetune'
    options = [
        f'load_from={CHECKPOINT}',
        f'train_cfg.max_iters={args.iters}',
        # The checkpoint's anchors replace these when it loads.
        f'model.head.instance_bank.anchor={ovpkl / "train/anchor_init_kmeans300.npy"}',
        'train_dataloader.batch_size=1',
        'train_dataloader.sampler.batch_size=1',
        'train_dataloader.sampler.split_num=1',
        'train_dataloader.num_workers=2',
        f'train_dataloader.dataset.data_root={out / "raw"}',
        'train_dataloader.dataset.ann_file=../ovpkl/train',
        'optim_wrapper.optimizer.lr=1e-4',
        'param_scheduler.0.end=1',
        'param_scheduler.1.begin=1',
        f'param_scheduler.1.end={args.iters}',
        'default_hooks.logger.interval=5',
        'log_processor.window_size=5',
        f'default_hooks.checkpoint.interval={args.iters}',
        # No validation: the demo scores the tracking step above instead.
        'val_dataloader=None',
        'val_cfg=None',
        'val_evaluator=None',
    ]
    log = run('tools/train.py', str(CONFIG), '--work-dir', str(work), '--cfg-options', *options)
    losses = [float(v) for v in re.findall(r'Iter\(train\).*?  loss: ([0-9.]+)', log)]
    print('    loss every 5 iterations: ' + ' '.join(f'{v:.2f}' for v in losses))
    if len(losses) >= 2:
        trend = 'fell' if losses[-1] < losses[0] else 'did not fall'
        print(f'    the loss {trend} from {losses[0]:.2f} to {losses[-1]:.2f}; logs in {work}')
    print(
        f'done in {time.perf_counter() - start:.0f} s. Look at {vis}/frames/*.png and '
        f'{vis}/{scene}_tracks.mp4'
    )


if __name__ == '__main__':
    run_tool('demo', main)
