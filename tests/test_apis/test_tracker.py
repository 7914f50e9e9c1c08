"""The stateful tracker, tools/infer.py and tools/visualize.py against tools/test.py."""

import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mmsparse4d.apis import Sparse4DTracker
from mmsparse4d.datasets.aicity import RawScene
from mmsparse4d.evaluation.writers import read_nvschema, read_submission
from mmsparse4d.testing import build_untrained_model
from tests.conftest import REPO_ROOT

TINY = REPO_ROOT / 'configs/sparse4d/sparse4d_tiny_synthetic.py'
TRAINING_MD = REPO_ROOT / 'docs/training.md'


@pytest.fixture(scope='module')
def tiny_run(h5_scene, tmp_path_factory):
    """The h5 scene converted without groups, a tiny model's checkpoint and a config."""
    from mmsparse4d.datasets.converters.create_data import create_data

    root = tmp_path_factory.mktemp('tracker')
    scene_dir = h5_scene[0]
    create_data(
        [scene_dir], root / 'ovpkl', data_root=scene_dir.parent, num_anchors=60, progress=False
    )
    torch.manual_seed(0)
    model = build_untrained_model(TINY, decoder=dict(num_output=20, score_threshold=None))
    checkpoint = root / 'tiny.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, checkpoint)
    config = root / 'tiny_test.py'
    config.write_text(
        f"_base_ = ['{TINY}']\n"
        f'model = dict(head=dict(decoder=dict(num_output=20, score_threshold=None),\n'
        f"    instance_bank=dict(anchor='{root}/ovpkl/anchor_init_kmeans60.npy')))\n"
        f"test_dataloader = dict(dataset=dict(data_root='{scene_dir.parent}',\n"
        f"    ann_file='{root}/ovpkl'))\n"
        'test_evaluator = []\n'
        "test_cfg = dict(type='TestLoop')\n"
    )
    return scene_dir, checkpoint, config, root


def write_train_config(tiny_run, name):
    """A training config on the converted scene (one sub-sequence, HOTA and mAP in
    validation) next to the tiny test config."""
    scene_dir, _, config, root = tiny_run
    path = root / name
    path.write_text(
        f"_base_ = ['{config}']\n"
        f"train_dataloader = dict(dataset=dict(data_root='{scene_dir.parent}',\n"
        f"    ann_file='{root}/ovpkl'), sampler=dict(split_num=1))\n"
        f"val_dataloader = dict(dataset=dict(data_root='{scene_dir.parent}',\n"
        f"    ann_file='{root}/ovpkl'))\n"
        "val_evaluator = [dict(type='AICityHOTAMetric'), dict(type='DetectionAPMetric')]\n"
    )
    return path


def run_tool(*args):
    done = subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def tracker_against_tools_test(tiny_run, config, name):
    """Tracks the scene with ``config`` and asserts every frame equals tools/test.py's;
    returns the tracker's outputs."""
    scene_dir, checkpoint, _, root = tiny_run
    results = root / f'{name}.pkl'
    run_tool('tools/test.py', config, checkpoint, '--work-dir', root / name, '--out', results)
    with open(results, 'rb') as file:
        dumped = pickle.load(file)
    tracker = Sparse4DTracker(str(config), checkpoint)
    scene = RawScene(scene_dir)
    cameras = scene.cameras
    intrinsics = np.stack([scene.calibration[c].intrinsic for c in cameras])
    extrinsics = np.stack([scene.calibration[c].world_to_camera for c in cameras])
    assert len(dumped) == scene.num_frames
    outputs = []
    for frame, expected in enumerate(dumped):
        assert expected['frame_idx'] == frame
        out = tracker(
            [scene.rgb(c, frame) for c in cameras],
            intrinsics,
            extrinsics,
            frame / scene.fps,
            scene.name,
            frame_idx=frame,
        )
        pred = expected['pred_instances_3d']
        np.testing.assert_allclose(out['bboxes_3d'], pred['bboxes_3d'].numpy(), atol=1e-4)
        np.testing.assert_allclose(out['scores_3d'], pred['scores_3d'].numpy(), atol=1e-5)
        # Track ids are numbered from FIRST_TRACK_ID in every output, the model's included.
        np.testing.assert_array_equal(out['track_ids'], pred['track_ids'].numpy())
        outputs.append(out)
    scene.close()
    return outputs


def test_tracker_equals_tools_test(tiny_run):
    tracker_against_tools_test(tiny_run, tiny_run[2], 'test')


def test_new_query_exclusion_tracks_as_the_model_does(tiny_run):
    # The exclusion reads the cache's confidences, a graph input only for such a model: the
    # tracker (the frame graph) and tools/test.py (the head) must still agree, and the
    # setting must change what is tracked.
    config = tiny_run[3] / 'tiny_exclusion.py'
    config.write_text(
        f"_base_ = ['{tiny_run[2]}']\n"
        'model = dict(head=dict(instance_bank=dict(\n'
        '    new_query_exclusion=dict(radius=1.0, min_confidence=0.0))))\n'
    )
    excluded = tracker_against_tools_test(tiny_run, config, 'exclusion')
    plain = tracker_against_tools_test(tiny_run, tiny_run[2], 'plain')
    assert any(
        a['bboxes_3d'].shape != b['bboxes_3d'].shape
        or not np.allclose(a['bboxes_3d'], b['bboxes_3d'])
        for a, b in zip(excluded, plain, strict=True)
    )


def test_bad_frames_are_refused(tiny_run):
    _, checkpoint, config, _ = tiny_run
    tracker = Sparse4DTracker(str(config), checkpoint)
    image = np.zeros((90, 160, 3), np.uint8)
    eye = np.tile(np.eye(3), (1, 1, 1))
    pose = np.tile(np.eye(4), (1, 1, 1))
    with pytest.raises(ValueError, match='uint8'):
        tracker([image.astype(np.float32)], eye, pose, 0.0)
    with pytest.raises(ValueError, match='non-finite'):
        tracker([image], eye * np.nan, pose, 0.0)
    with pytest.raises(ValueError, match=r'intrinsics \[2, 3, 3\]'):
        tracker([image, image], eye, pose, 0.0)
    with pytest.raises(ValueError, match='at most 20'):
        tracker([image] * 21, np.tile(np.eye(3), (21, 1, 1)), np.tile(np.eye(4), (21, 1, 1)), 0.0)
    with pytest.raises(FileNotFoundError, match='checkpoint'):
        Sparse4DTracker(str(config), checkpoint.with_name('missing.pth'))
    oae = REPO_ROOT / 'projects/sparse4d/configs/sparse4d_oae_tiny_synthetic.py'
    with pytest.raises(ValueError, match='does not fit the model of'):
        Sparse4DTracker(str(oae), checkpoint)


def test_infer_and_visualize_write_their_files(tiny_run):
    scene_dir, checkpoint, config, root = tiny_run
    out = root / 'infer'
    run_tool(
        'tools/infer.py',
        config,
        checkpoint,
        scene_dir,
        '--out-dir',
        out,
        '--score-threshold',
        '0.0',
        '--frames',
        '5',
    )
    rows = read_submission(out / f'{scene_dir.name}_submission.txt')
    assert len(rows) == 5 * 20 and set(rows[:, 3]) == set(range(5))
    assert len(read_nvschema(out / f'{scene_dir.name}_nvschema.jsonl')) == 5
    visualize = ['tools/visualize.py', scene_dir, out / f'{scene_dir.name}_tracks.npz']
    log = run_tool(*visualize, '--out-dir', root / 'vis')
    assert '5 pictures' in log
    assert len(list((root / 'vis' / 'frames').glob('*.png'))) == 5
    assert (root / 'vis' / f'{scene_dir.name}_tracks.mp4').stat().st_size > 0
    # Again into the same folder: the first run's pictures go (said), none mixed in.
    log = run_tool(*visualize, '--out-dir', root / 'vis', '--every', '2')
    assert '5 pictures of an earlier run removed' in log and '3 pictures' in log
    assert len(list((root / 'vis' / 'frames').glob('*.png'))) == 3
    # Tracks of another scene, and an output under a file: one line each.
    tracks = dict(np.load(out / f'{scene_dir.name}_tracks.npz'))
    np.savez(root / 'other_tracks.npz', **{**tracks, 'scene': 'Warehouse_900'})
    (root / 'afile').write_text('')
    for command, message in [
        (
            ['tools/visualize.py', scene_dir, root / 'other_tracks.npz', '--out-dir', root / 'v'],
            f"{root / 'other_tracks.npz'}: tracks of scene 'Warehouse_900', not of "
            f"'{scene_dir.name}'",
        ),
        (
            ['tools/infer.py', config, checkpoint, scene_dir, '--out-dir', root / 'afile' / 'x'],
            f'--out-dir {root / "afile" / "x"}: {root / "afile"} is a file, not a folder',
        ),
    ]:
        done = subprocess.run(
            [sys.executable, *map(str, command)], cwd=REPO_ROOT, capture_output=True, text=True
        )
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    done = subprocess.run(
        [
            sys.executable,
            'tools/infer.py',
            str(config),
            str(checkpoint),
            str(root / 'no_scene'),
            '--out-dir',
            str(root / 'x'),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and 'no_scene: scene folder not found' in done.stderr
    assert not (root / 'x').exists()


def test_demo_runs_end_to_end(tmp_path):
    """``make demo``'s job with fewer frames and iterations."""
    # A fresh seed of 4 cameras (the default draws one at random: up to 12 cameras).
    arguments = ['--out', tmp_path, '--frames', '6', '--iters', '10', '--fresh-seed', '1000032']
    log = run_tool('tools/demo.py', *arguments)
    assert 'HOTA' in log and 'mAP' in log
    assert 'training scene: seed 8 (training), 4 cameras' in log and '(fresh), ' in log
    assert len(list((tmp_path / 'pictures' / 'frames').glob('*.png'))) == 6
    assert 'loss every 5 iterations' in log
    scores = json.loads((tmp_path / 'scores.json').read_text())
    assert set(scores) == {'training scene', 'fresh scene'}
    assert scores['training scene']['seed'] == 8 and scores['fresh scene']['seed'] == 1_000_032
    assert all(0 <= s['HOTA'] <= 100 and 0 <= s['mAP'] <= 1 for s in scores.values())


def test_real_model_trains_validates_and_resumes(tiny_run):
    """tools/train.py on the tiny config and a converted scene: validation with HOTA and mAP
    during training, a resume that continues iteration, optimizer and schedule, and
    checkpoints that load weights-only."""
    root = tiny_run[3]
    train_config = write_train_config(tiny_run, 'tiny_train.py')
    work = root / 'train'
    common = [
        '--work-dir',
        work,
        '--cfg-options',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1',
        'log_processor.window_size=1',
    ]
    log = run_tool(
        'tools/train.py', train_config, *common, 'train_cfg.max_iters=2', 'train_cfg.val_interval=2'
    )
    assert 'Iter(train) [2/2]' in log and 'eta:' in log
    assert 'aicity/HOTA' in log and 'det/mAP' in log
    log = run_tool(
        'tools/train.py',
        train_config,
        *common,
        'train_cfg.max_iters=4',
        'train_cfg.val_interval=4',
        '--resume',
    )
    assert 'resumed epoch: 0, iter: 2' in log
    assert 'Resumed the data at batch 2 through the sampler' in log  # nothing loaded twice
    resumed = torch.load(work / 'iter_4.pth')  # weights-only, torch's default
    assert resumed['meta']['iter'] == 4
    assert float(resumed['optimizer']['state'][0]['step']) == 4
    assert resumed['param_schedulers'][0]['last_step'] == 4


def test_tools_test_refuses_a_checkpoint_of_another_model(tiny_run):
    _, checkpoint, config, root = tiny_run
    mismatch = root / 'oae_test.py'
    mismatch.write_text(
        f"_base_ = ['{config}']\n"
        "custom_imports = dict(imports=['projects.sparse4d.sparse4d'])\n"
        "model = dict(head=dict(reid_branch=dict(type='OcclusionAwareReIDBranch', "
        'embed_dims=64, num_ids=8)))\n'
    )
    done = subprocess.run(
        [
            sys.executable,
            'tools/test.py',
            str(mismatch),
            str(checkpoint),
            '--work-dir',
            str(root / 'mismatch'),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert 'does not fit the model of' in done.stderr


def test_profile_train_step_on_real_batches(tiny_run):
    """tools/analysis_tools/profile_train_step.py --real-data: the config's own model,
    optimizer wrapper (grouped parameters) and dataloader, on CPU."""
    train_config = write_train_config(tiny_run, 'tiny_profile.py')
    log = run_tool(
        'tools/analysis_tools/profile_train_step.py',
        train_config,
        '--real-data',
        '--batch',
        1,
        '--steps',
        2,
    )
    assert re.search(r'ms per step, [0-9.]+ samples/s \(1 samples, real batches', log)
    # Timed twice: first sight of the batches' shapes, then the same batches again.
    assert re.search(r'; [0-9.]+ ms per step over the same batches again', log)
    # ... and on the batches that follow, taken from the running loader.
    assert re.search(
        r'[0-9.]+ ms per step over 2 further batches taken from the running loader, '
        r'[0-9.]+ ms of it waiting for a batch',
        log,
    )
    assert 'GroupedOptimWrapperConstructor: 2 parameter groups' in log
    # Where a CUDA step would wait, by source line: the one matching transfer of the step.
    waits = log[log.index('where the host waits for the GPU') :]
    assert 'mmsparse4d/models/utils/host_transfer.py' in waits and 'in all' in waits


def test_batch_shapes_walks_the_configs_sampler_over_its_annotations(tiny_run):
    """tools/analysis_tools/batch_shapes.py on a real converted scene: the table of first
    sights; a config whose sampler has no batch slots is refused in one line."""
    train_config = write_train_config(tiny_run, 'tiny_shapes.py')
    log = run_tool('tools/analysis_tools/batch_shapes.py', train_config, '--steps', 5)
    assert '| steps | new backbone images | new head cameras |' in log
    assert re.search(r'\| 0-5 \| [0-9]+% \|', log)
    plain = train_config.with_name('tiny_shapes_plain_sampler.py')
    plain.write_text(
        f"_base_ = ['{train_config}']\n"
        "train_dataloader = dict(sampler=dict(_delete_=True, type='DefaultSampler'))\n"
    )
    done = subprocess.run(
        [sys.executable, 'tools/analysis_tools/batch_shapes.py', str(plain)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f'batch_shapes: {plain}: train_dataloader.sampler must be SequentialGroupSampler '
        "(a batch slot per sequence), got 'DefaultSampler'"
    )


def test_training_steps_with_the_images_warped_on_the_device(tiny_run):
    """training.md's snippet: the data workers leave the images' warp and colour
    distortion to the data preprocessor; the real model trains on its batches."""
    base = write_train_config(tiny_run, 'tiny_warp_base.py')
    config = base.with_name('tiny_warp_device.py')
    # The tiny pipeline leaves the colour distortion out: put it back for the snippet.
    with_colours = base.with_name('tiny_warp_colours.py')
    with_colours.write_text(
        f"_base_ = ['{base}']\n"
        'train_pipeline = _base_.train_pipeline[:-1] + [\n'
        "    dict(type='MultiViewPhotometricDistortion'), _base_.train_pipeline[-1]]\n"
    )
    snippet = re.search(r'```python\n(on_device = .*?)```', TRAINING_MD.read_text(), re.S)
    config.write_text(f"_base_ = ['{with_colours}']\n" + snippet.group(1))
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    from mmsparse4d.models.data_preprocessors import Sparse4DDataPreprocessor

    cfg = Config.fromfile(str(config))
    loader_cfg = dict(cfg.train_dataloader, num_workers=0, persistent_workers=False)
    with DefaultScope.overwrite_default_scope('mmsparse4d'):
        batch = next(iter(Runner.build_dataloader(loader_cfg)))
    width, height = cfg.image_size
    assert batch['inputs']['img'].shape[-2:] != (height, width)  # as loaded
    assert batch['inputs']['image_warp'].shape[-2:] == (2, 3)
    assert batch['inputs']['colour_distortion'].shape[-1] == 4
    inputs = Sparse4DDataPreprocessor()(batch, training=True)['inputs']
    assert inputs['img'].shape[-2:] == (height, width) and 'image_warp' not in inputs
    assert 'colour_distortion' not in inputs
    log = run_tool(
        'tools/analysis_tools/profile_train_step.py',
        config,
        '--real-data',
        '--batch',
        2,
        '--steps',
        2,
    )
    assert re.search(r'ms per step, [0-9.]+ samples/s \(2 samples, real batches', log)


def test_two_process_training_validation_and_test_on_cpu(tiny_run):
    """tools/dist_train.sh with 2 processes (gloo on the CPU, chosen and logged because
    there is no CUDA): training steps, then validation where each frame is evaluated once
    (the evaluation sampler gives every scene whole to one rank); then tools/dist_test.sh
    on its checkpoint. No PORT is given and torchrun's usual port is taken: one node's run
    finds a free port itself."""
    import os
    import socket

    root = tiny_run[3]
    train_config = write_train_config(tiny_run, 'tiny_dist.py')
    env = dict(os.environ, PATH=f'{Path(sys.executable).parent}:{os.environ["PATH"]}')
    env.pop('PORT', None)

    def launch(script, *args) -> str:
        done = subprocess.run(
            ['bash', f'tools/{script}', *map(str, args)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        log = done.stdout + done.stderr
        assert done.returncode == 0, log[-4000:]
        return log

    with socket.socket() as usual_port:
        try:
            usual_port.bind(('127.0.0.1', 29500))
            usual_port.listen()
        except OSError:
            pass  # taken by something else already: the same situation
        log = launch(
            'dist_train.sh',
            train_config,
            2,
            '--work-dir',
            root / 'dist',
            '--cfg-options',
            'train_cfg.max_iters=2',
            'train_cfg.val_interval=2',
            'default_hooks.logger.interval=1',
            'default_hooks.checkpoint.interval=2',
        )
    assert 'a distributed run on the CPU with the gloo backend (rank 0 of 2)' in log
    assert 'Iter(train) [2/2]' in log and 'aicity/HOTA' in log
    # tools/dist_test.sh on the checkpoint just written, scored.
    test_config = root / 'tiny_dist_test.py'
    test_config.write_text(
        f"_base_ = ['{train_config}']\ntest_evaluator = [dict(type='AICityHOTAMetric')]\n"
    )
    log = launch(
        'dist_test.sh',
        test_config,
        root / 'dist' / 'iter_2.pth',
        2,
        '--work-dir',
        root / 'dist_test',
    )
    assert 'a distributed run on the CPU with the gloo backend (rank 1 of 2)' in log
    assert 'aicity/HOTA' in log


ANOTHER_MEANING = 'trained with model.head.refine_layer.velocity_per_second=False, but'


def trained_under(tiny_run, config, name):
    """The tiny checkpoint stamped with ``config`` as its training config (as the Runner
    stores it), and a config on top of ``config`` that reads its velocity in m/s: the same
    tensors under another meaning."""
    from mmengine.config import Config

    _, checkpoint, _, root = tiny_run
    stamped = root / f'{name}.pth'
    state = torch.load(checkpoint)
    cfg_text = Config.fromfile(str(config)).pretty_text
    torch.save({'state_dict': state['state_dict'], 'meta': {'cfg': cfg_text}}, stamped)
    per_second = root / f'{name}_per_second.py'
    refine = 'model = dict(head=dict(refine_layer=dict(velocity_per_second=True)))\n'
    per_second.write_text(f"_base_ = ['{config}']\n{refine}")
    return stamped, per_second


def test_a_checkpoint_trained_under_another_meaning_is_refused(tiny_run):
    # Same tensors, another meaning: a velocity trained per frame, read in m/s.
    from mmengine.config import Config

    _, _, config, root = tiny_run
    stamped, per_second = trained_under(tiny_run, config, 'tiny_with_cfg')
    Sparse4DTracker(Config.fromfile(str(config)), stamped)  # the config it was trained with
    message = ANOTHER_MEANING
    with pytest.raises(ValueError, match=message):
        Sparse4DTracker(Config.fromfile(str(per_second)), stamped)
    done = subprocess.run(
        [
            sys.executable,
            'tools/test.py',
            str(per_second),
            str(stamped),
            '--work-dir',
            str(root / 'meaning'),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and message in done.stderr
    assert not list((root / 'meaning').rglob('aicity_hota.json'))  # refused before testing


def test_resuming_or_fine_tuning_weights_of_another_meaning_is_refused(tiny_run):
    """tools/train.py compares the checkpoint it would resume or start from the same way,
    before the Runner starts."""
    from mmengine.config import Config

    from mmsparse4d.engine.checkpoint_settings import (
        check_training_checkpoint,
        training_checkpoint,
    )

    root = tiny_run[3]
    train_config = write_train_config(tiny_run, 'tiny_train_meaning.py')
    stamped, per_second = trained_under(tiny_run, train_config, 'tiny_train_with_cfg')
    message = ANOTHER_MEANING

    work = root / 'resume_meaning'
    work.mkdir()
    (work / 'last_checkpoint').write_text(str(stamped))
    for settings in (
        dict(resume=True, load_from=None),  # --resume: the work dir's latest
        dict(resume=True, load_from=str(stamped)),  # --resume PATH
        dict(resume=False, load_from=str(stamped)),
    ):  # fine-tuning
        same = Config.fromfile(str(train_config))
        same.merge_from_dict(dict(work_dir=str(work), **settings))
        assert training_checkpoint(same) == str(stamped)
        check_training_checkpoint(same)  # the config it was trained with
        other = Config.fromfile(str(per_second))
        other.merge_from_dict(dict(work_dir=str(work), **settings))
        with pytest.raises(ValueError, match=message):
            check_training_checkpoint(other)
    fresh = Config.fromfile(str(per_second))
    fresh.merge_from_dict(dict(work_dir=str(root / 'empty'), resume=True, load_from=None))
    assert training_checkpoint(fresh) is None  # nothing to resume: starts from scratch

    done = subprocess.run(
        [
            sys.executable,
            'tools/train.py',
            str(per_second),
            '--work-dir',
            str(root / 'train_meaning'),
            '--resume',
            str(stamped),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and message in done.stderr
    assert not (root / 'train_meaning').exists()  # refused before the Runner made its dir


def shifted_copy(scene_dir: Path, root: Path, shift) -> Path:
    """The scene with its whole world moved by ``shift`` (metres): calibration (R, t and
    K [R|t]), camera coordinates and ground truth, as a site off the world origin is."""
    import json
    import shutil

    shift = np.asarray(shift, dtype=np.float64)
    moved = root / f'{scene_dir.name}_moved'
    if moved.exists():
        return moved
    shutil.copytree(scene_dir, moved)
    calibration = json.loads((moved / 'calibration.json').read_text())
    for sensor in calibration['sensors']:
        extrinsic = np.asarray(sensor['extrinsicMatrix'], dtype=np.float64)
        # X_cam = R X + t = R (X' - shift) + t for the moved world point X' = X + shift.
        extrinsic[:, 3] -= extrinsic[:, :3] @ shift
        sensor['extrinsicMatrix'] = extrinsic.tolist()
        sensor['cameraMatrix'] = (np.asarray(sensor['intrinsicMatrix']) @ extrinsic).tolist()
        sensor.pop('homography', None)
        sensor['coordinates'] = {
            'x': sensor['coordinates']['x'] + shift[0],
            'y': sensor['coordinates']['y'] + shift[1],
        }
    (moved / 'calibration.json').write_text(json.dumps(calibration))
    truth = json.loads((moved / 'ground_truth.json').read_text())
    for objects in truth.values():
        for item in objects:
            item['3d location'] = (np.asarray(item['3d location']) + shift).tolist()
    (moved / 'ground_truth.json').write_text(json.dumps(truth))
    return moved


def track(tracker, scene_dir, frames, **kwargs):
    scene = RawScene(scene_dir)
    cameras = scene.cameras
    intrinsics = np.stack([scene.calibration[c].intrinsic for c in cameras])
    extrinsics = np.stack([scene.calibration[c].world_to_camera for c in cameras])
    tracker.reset()
    results = [
        tracker(
            [scene.rgb(c, frame) for c in cameras],
            intrinsics,
            extrinsics,
            frame / scene.fps,
            scene.name,
            frame_idx=frame,
            **kwargs,
        )
        for frame in range(frames)
    ]
    scene.close()
    return results


def test_a_site_off_the_world_origin_tracks_as_if_centred(tiny_run, caplog_mm):
    """The default origin is the centre of the cameras' floor footprint (cameras_origin,
    which the converter re-centres on too), so moving the whole site 60 m away moves the
    boxes by 60 m and changes nothing else; with the origin forced to the world's, the
    floor lies outside the anchors' reach and a warning names both ranges."""
    scene_dir, checkpoint, config, root = tiny_run
    shift = (60.0, -45.0, 0.0)
    moved = shifted_copy(scene_dir, root, shift)
    tracker = Sparse4DTracker(str(config), checkpoint)
    here = track(tracker, scene_dir, 3)
    there = track(tracker, moved, 3)
    for a, b in zip(here, there, strict=True):
        np.testing.assert_array_equal(a['track_ids'], b['track_ids'])
        # The cameras re-centred in float32 from 75 m away differ by ulps of 75 m (9e-6 m),
        # which the sampling and six refinements grow; a wrong origin moves boxes by metres.
        np.testing.assert_allclose(b['bboxes_3d'][:, :3] - shift, a['bboxes_3d'][:, :3], atol=1e-3)
        np.testing.assert_allclose(b['scores_3d'], a['scores_3d'], atol=1e-4)
    assert any(
        'origin (' in m and 'the centre of the floor its 4 cameras see' in m for m in caplog_mm
    )
    # The tiny model's 60 anchors span only the middle of the floor, wherever it is.
    shares = [m.split(': ')[-1][:3] for m in caplog_mm if "the checkpoint's anchors cover" in m]
    assert shares == ['47%', '47%'], caplog_mm
    track(tracker, moved, 1, origin=(0.0, 0.0, 0.0))
    warning = caplog_mm[-1]
    assert (
        'its cameras see the floor over x 45.1..67.1 m, y -54.7..-32.4 m around the origin '
        "(0.00, 0.00, 0.00), the checkpoint's anchors cover x -3.9..4.0 m, y -4.0..4.0 m: 0% "
        'of that floor' in warning
    ), warning


def test_degenerate_cameras_are_refused(tiny_run):
    from mmsparse4d.utils.input_error import InputError

    _, checkpoint, config, _ = tiny_run
    tracker = Sparse4DTracker(str(config), checkpoint)
    image = np.zeros((90, 160, 3), np.uint8)
    k = np.array([[[100.0, 0, 80], [0, 100, 45], [0, 0, 1]]])
    pose = np.eye(4)[None]
    with pytest.raises(InputError, match='camera 0: intrinsics .* are not a camera matrix K'):
        tracker([image], np.zeros((1, 3, 3)), pose, 0.0)
    with pytest.raises(InputError, match='camera 0: world_to_camera .* is not a rigid'):
        tracker([image], k, np.zeros((1, 4, 4)), 0.0)
    mirrored = pose.copy()
    mirrored[0, 0, 0] = -1  # det -1: a reflection, not a camera pose
    with pytest.raises(InputError, match='not a rigid'):
        tracker([image], k, mirrored, 0.0)


def run_infer(*args):
    """tools/infer.py through its entry point: (exit status, stderr lines)."""
    import contextlib
    import io

    from mmsparse4d.utils.input_error import run_tool
    from tools.infer import main

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            run_tool('infer', main, [str(a) for a in args])
            status = 0
        except SystemExit as error:
            status = error.code
    return status, stderr.getvalue().strip().splitlines()


def test_infer_refuses_before_any_frame_runs(tiny_run, tmp_path):
    import h5py

    scene_dir, checkpoint, config, root = tiny_run
    base = [config, checkpoint, scene_dir, '--out-dir']
    status, lines = run_infer(*base, tmp_path / 'a', '--frames', '0')
    assert status == 2 and lines == ['infer: --frames 0: track at least 1 frame']
    status, lines = run_infer(*base, tmp_path / 'b', '--frames', '13')
    assert status == 2 and len(lines) == 1 and '--frames 13: the videos have 12 frames' in lines[0]
    status, lines = run_infer(*base, tmp_path / 'e', '--cfg-options', 'model.head.decodr.x=1')
    assert status == 2 and len(lines) == 1 and "model.head has no key 'decodr'" in lines[0]
    assert not any((tmp_path / name).exists() for name in 'abe')
    out = tmp_path / 'c'
    assert run_infer(*base, out, '--frames', '1')[0] == 0
    written = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    status, lines = run_infer(*base, out, '--frames', '1')
    assert status == 2 and len(lines) == 1 and 'holds results of this scene already' in lines[0]
    assert '--overwrite' in lines[0]
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == written
    assert run_infer(*base, out, '--frames', '1', '--overwrite')[0] == 0
    (tmp_path / 'file').write_text('')
    status, lines = run_infer(*base, tmp_path / 'file', '--frames', '1')
    assert status == 2 and lines[0].endswith('file is a file, not a folder')
    short = root / 'short_scene' / scene_dir.name
    if not short.exists():
        import shutil

        shutil.copytree(scene_dir, short)
        with h5py.File(short / 'Camera_01.h5', 'a') as file:
            del file['rgb/rgb_00011.jpg']
    status, lines = run_infer(config, checkpoint, short, '--out-dir', tmp_path / 'd')
    assert status == 2 and len(lines) == 1 and 'Camera_01.h5: 11 frames' in lines[0]
    assert not (tmp_path / 'd').exists()


def test_infer_writes_the_trackers_ids_unchanged(tiny_run, tmp_path):
    scene_dir, checkpoint, config, _ = tiny_run
    out = tmp_path / 'ids'
    status, lines = run_infer(
        config, checkpoint, scene_dir, '--out-dir', out, '--frames', '3', '--score-threshold', '0.0'
    )
    assert status == 0, lines
    rows = read_submission(out / f'{scene_dir.name}_submission.txt')
    frames = read_nvschema(out / f'{scene_dir.name}_nvschema.jsonl')
    tracks = np.load(out / f'{scene_dir.name}_tracks.npz')
    for frame in range(3):
        npz_ids = sorted(tracks[f'{frame}/track_ids'].tolist())
        json_ids = sorted(int(o['id']) for o in frames[frame]['objects'])
        text_ids = sorted(rows[rows[:, 3] == frame, 2].astype(int).tolist())
        assert npz_ids == json_ids == text_ids and min(npz_ids) >= 1


def test_infer_smooths_the_submission_as_the_config_says(tiny_run, tmp_path):
    """A config's ``track_smoothing`` changes the submission only, to what ``smooth_tracks``
    makes of the boxes as tracked; ``--no-track-smoothing`` writes those; bad settings are
    refused in one line before any frame runs."""
    from mmsparse4d.evaluation.functional.track_smoothing import smooth_tracks

    scene_dir, checkpoint, config, root = tiny_run
    smoothing_config = root / 'tiny_smoothing.py'
    smoothing_config.write_text(
        f"_base_ = ['{config}']\ntrack_smoothing = dict(centre_window=2, constant_size=True)\n"
    )
    common = [smoothing_config, checkpoint, scene_dir, '--frames', '6', '--score-threshold', '0']
    assert run_infer(*common, '--out-dir', tmp_path / 's')[0] == 0
    assert run_infer(*common, '--out-dir', tmp_path / 'r', '--no-track-smoothing')[0] == 0
    name = scene_dir.name
    smoothed = read_submission(tmp_path / 's' / f'{name}_submission.txt')
    as_tracked = read_submission(tmp_path / 'r' / f'{name}_submission.txt')
    # The streamed outputs hold the tracker's own boxes in both runs.
    nvschema = f'{name}_nvschema.jsonl'
    assert (tmp_path / 's' / nvschema).read_bytes() == (tmp_path / 'r' / nvschema).read_bytes()
    with (
        np.load(tmp_path / 's' / f'{name}_tracks.npz') as first,
        np.load(tmp_path / 'r' / f'{name}_tracks.npz') as second,
    ):
        assert sorted(first.files) == sorted(second.files)
        for key in first.files:
            np.testing.assert_array_equal(first[key], second[key])
    assert not np.allclose(smoothed[:, 4:10], as_tracked[:, 4:10], atol=0.02)
    # Written with 2 decimals: the smoothing of the rounded rows differs by the rounding
    # (0.005) times the fit's largest weight sum (4/3 at a track's end), plus the output's.
    expected = smooth_tracks(as_tracked, centre_window=2, constant_size=True)
    np.testing.assert_array_equal(smoothed[:, :4], expected[:, :4])
    np.testing.assert_allclose(smoothed[:, 4:], expected[:, 4:], atol=0.012 + 1e-9)
    status, lines = run_infer(
        *common, '--out-dir', tmp_path / 'bad', '--cfg-options', 'track_smoothing.centre_window=-1'
    )
    assert status == 2 and len(lines) == 1 and 'windows are frames >= 0' in lines[0]
    assert str(smoothing_config) in lines[0] and not (tmp_path / 'bad').exists()


def test_infer_stands_the_boxes_on_the_configured_floor_and_warns_far_from_it(
    tiny_run, tmp_path, caplog_mm
):
    """``track_smoothing.floor_height`` puts every submitted centre at half its box's height
    above the floor; a floor far from where the tracked boxes stand is warned about, naming
    both heights."""
    scene_dir, checkpoint, config, root = tiny_run
    floor_config = root / 'tiny_floor.py'
    floor_config.write_text(
        f"_base_ = ['{config}']\n"
        'track_smoothing = dict(constant_size=True, yaw_window=3, floor_height=5.0)\n'
    )
    out = tmp_path / 'floor'
    common = [floor_config, checkpoint, scene_dir, '--frames', '4', '--score-threshold', '0']
    assert run_infer(*common, '--out-dir', out)[0] == 0
    rows = read_submission(out / f'{scene_dir.name}_submission.txt')
    np.testing.assert_allclose(rows[:, 6], 5.0 + rows[:, 9] / 2, atol=0.01)
    (warning,) = [m for m in caplog_mm if 'the tracked boxes stand at a median z of' in m]
    assert 'the config puts the floor at 5 m' in warning and str(floor_config) in warning
