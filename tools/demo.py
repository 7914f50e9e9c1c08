"""The README's main job on a small synthetic scene (``make demo``): generate a scene, track
it with the shipped checkpoint, score HOTA and mAP against its ground truth, draw the tracks,
then fine-tune the model on the scene for a few dozen CPU iterations and show the loss fall.

    python tools/demo.py [--out data/demo] [--device cpu] [--iters 30]

Every step writes under --out; running it again starts the steps afresh (the scene is
generated once).
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mmsparse4d.datasets.synthetic.generator_stamp import generator_stamp, is_current, write_stamp
from mmsparse4d.evaluation.scene_scores import score_scene
from mmsparse4d.utils.input_error import InputError, run_tool

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / 'projects/sparse4d/configs/sparse4d_oae_small_480x272_synthetic.py'
CHECKPOINT = REPO / 'checkpoints/sparse4d_oae_small_480x272_synthetic-47bb6a98.pth'
SCENE = 'Warehouse_900'


def run(*args: str) -> str:
    """Run a repository tool, echo its last lines, fail loudly with its output."""
    command = [sys.executable, *args]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        print(done.stdout[-3000:], done.stderr[-3000:], sep='\n')
        raise SystemExit(f'demo: {" ".join(args[:2])} failed (exit {done.returncode})')
    return done.stdout + done.stderr


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=REPO / 'data/demo')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--iters', type=int, default=30)
    parser.add_argument('--frames', type=int, default=40)
    args = parser.parse_args(argv)
    for path in (CONFIG, CHECKPOINT):
        if not path.is_file():
            raise InputError('missing from the repository (a partial clone?)', path=path)
    if args.iters < 1 or args.frames < 1:
        raise InputError(f'--iters and --frames must be >= 1, got {args.iters} and {args.frames}')
    out = args.out.resolve()
    raw = out / 'raw' / SCENE
    start = time.perf_counter()

    print('1/5 synthetic scene (seed 900, 4 cameras at 480x270, another layout than training)')
    arguments = [
        '--seed',
        '900',
        '--cameras',
        '4',
        '--frames',
        str(args.frames),
        '--objects',
        '10',
        '--size',
        '480',
        '270',
    ]
    stamp = generator_stamp(arguments)
    if not is_current(raw, stamp):
        if (raw / 'ground_truth.json').is_file():
            print(f'    {raw} was made by another generator version or arguments: making it again')
        shutil.rmtree(raw, ignore_errors=True)
        run('tools/make_synthetic.py', str(raw), *arguments)
        write_stamp(raw, stamp)
    print(f'    {raw}')

    print('2/5 tracking with the shipped checkpoint')
    tracked = out / 'tracks'
    # The shipped checkpoint was trained on pickles centred on world (0, 0, 0), a generated
    # floor's centre; the default origin (the cameras' floor footprint) lies 1-3 m from it.
    print('    origin 0 0 0: the frame the shipped checkpoint was trained in')
    origin = ['--origin', '0', '0', '0']
    inputs = [str(CONFIG), str(CHECKPOINT), str(raw), '--out-dir', str(tracked)]
    log = run('tools/infer.py', *inputs, '--device', args.device, *origin, '--overwrite')
    rate = re.findall(r'\(([0-9.]+) frames/s\)', log)
    print(f'    {tracked} ({rate[-1] if rate else "?"} frames/s on {args.device})')

    print('3/5 scores against the ground truth (3D IoU HOTA, centre-distance mAP)')
    scores = score_scene(raw, tracked / f'{SCENE}_submission.txt', tracked / f'{SCENE}_tracks.npz')
    (out / 'scores.json').write_text(json.dumps(scores, indent=1))
    print('    ' + '  '.join(f'{k} {scores[k]:.3f}' for k in ('HOTA', 'DetA', 'AssA', 'mAP')))

    print("4/5 pictures: cameras with boxes by track id, bird's-eye view with trajectories")
    vis = out / 'pictures'
    log = run(
        'tools/visualize.py', str(raw), str(tracked / f'{SCENE}_tracks.npz'), '--out-dir', str(vis)
    )
    print(f'    {log.strip().splitlines()[-1]}')

    print(f'5/5 fine-tuning on the scene for {args.iters} iterations (CPU, batch 1)')
    ovpkl = out / 'ovpkl'
    run(
        'tools/create_data.py',
        str(raw),
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
        f'{vis}/{SCENE}_tracks.mp4'
    )


if __name__ == '__main__':
    run_tool('demo', main)
