"""tools/train.py and tools/test.py run the real mmengine Runner on a toy model (CPU)."""

import json
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmsparse4d.engine.cli import (
    cuda_graph_hints,
    is_bare_resume,
    keep_workers_only_with_workers,
    make_test_config,
    make_train_config,
)
from mmsparse4d.utils.input_error import EXIT_BAD_INPUT, InputError
from tests.conftest import REPO_ROOT, work_dir_held_by_another_process

TOY_MODULES = Path(__file__).with_name('toy_modules.py')


@pytest.fixture(scope='session')
def toy_package(tmp_path_factory):
    """A package holding the toy modules, imported at most once per test run."""
    root = tmp_path_factory.mktemp('toy')
    name = f'toy_{uuid.uuid4().hex[:8]}'
    (root / name).mkdir()
    shutil.copy(TOY_MODULES, root / name / '__init__.py')
    sys.path.insert(0, str(root))
    yield name, root
    sys.path.remove(str(root))


@pytest.fixture
def toy_config(toy_package, tmp_path):
    """A config inheriting the real runtime and schedule, with the toy parts."""
    package, package_root = toy_package
    loader = """dict(
        batch_size=4, num_workers=0, persistent_workers=False,
        collate_fn=dict(type='default_collate'),
        sampler=dict(type='DefaultSampler', shuffle={shuffle}),
        dataset=dict(type='ToyLinearDataset', size=16, seed={seed}))"""
    config = tmp_path / 'toy_config.py'
    config.write_text(
        textwrap.dedent(f"""
        _base_ = [
            '{REPO_ROOT}/configs/_base_/default_runtime.py',
            '{REPO_ROOT}/configs/_base_/schedules/adamw_cosine_tao.py',
        ]
        custom_imports = dict(imports=['{package}'], allow_failed_imports=False)
        model = dict(type='ToyRegressor')
        train_dataloader = {loader.format(shuffle=True, seed=0)}
        val_dataloader = {loader.format(shuffle=False, seed=1)}
        test_dataloader = val_dataloader
        val_evaluator = dict(type='ToyMeanAbsoluteError')
        test_evaluator = val_evaluator
        """)
    )
    return config, tmp_path, package_root


def run_process(tool, *args, pythonpath):
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools' / tool), *map(str, args)],
        capture_output=True,
        text=True,
        env={'PYTHONPATH': str(pythonpath), 'PATH': '/usr/bin:/bin', 'HOME': str(pythonpath)},
        timeout=300,
    )


def run_tool(tool, *args, pythonpath):
    completed = run_process(tool, *args, pythonpath=pythonpath)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed.stdout + completed.stderr


def refused_line(tool, *args, pythonpath):
    """Run a tool expected to refuse its input: exit 2 and one stderr line ``tool: ...``
    without a traceback. Returns that line."""
    completed = run_process(tool, *args, pythonpath=pythonpath)
    output = completed.stdout[-3000:] + completed.stderr[-3000:]
    assert completed.returncode == EXIT_BAD_INPUT, output
    assert 'Traceback' not in completed.stderr, output
    lines = completed.stderr.strip().splitlines()
    name = tool.removesuffix('.py')
    assert len(lines) == 1 and lines[0].startswith(f'{name}: '), output
    return lines[0]


@pytest.mark.slow
def test_train_resume_and_test_on_cpu(toy_config):
    config, tmp_path, package_root = toy_config
    work_dir = tmp_path / 'work'
    common = [
        '--work-dir',
        work_dir,
        '--cfg-options',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.logger.interval=1',
    ]
    log = run_tool(
        'train.py',
        config,
        *common,
        'train_cfg.max_iters=2',
        'train_cfg.val_interval=2',
        pythonpath=package_root,
    )
    assert 'Iter(train) [2/2]' in log and 'eta:' in log
    assert 'toy/mae' in log  # validation ran during training
    first = torch.load(work_dir / 'iter_2.pth')  # weights-only, torch's default
    assert first['meta']['iter'] == 2
    assert set(first) >= {'state_dict', 'optimizer', 'param_schedulers', 'message_hub'}

    log = run_tool(
        'train.py',
        config,
        *common,
        'train_cfg.max_iters=3',
        'train_cfg.val_interval=3',
        '--resume',
        pythonpath=package_root,
    )
    assert 'resumed epoch: 0, iter: 2' in log
    resumed = torch.load(work_dir / 'iter_3.pth')
    assert resumed['meta']['iter'] == 3
    step = resumed['optimizer']['state'][0]['step']
    assert float(step) == 3  # the optimizer state continued, not restarted
    assert resumed['param_schedulers'][0]['last_step'] == 3  # the warm-up continued
    head_lr = max(group['lr'] for group in resumed['optimizer']['param_groups'])
    assert head_lr == pytest.approx(1e-4 * (1 / 3 + (2 / 3) * 3 / 500), rel=1e-4)

    test_dir = tmp_path / 'test'
    results = tmp_path / 'predictions.pkl'
    log = run_tool(
        'test.py',
        config,
        work_dir / 'iter_3.pth',
        '--work-dir',
        test_dir,
        '--out',
        results,
        pythonpath=package_root,
    )
    assert 'toy/mae' in log
    assert results.is_file()
    scalars = list(test_dir.rglob('*.json'))
    assert scalars, 'the test run writes its metrics as JSON'
    metrics = json.loads(scalars[0].read_text().splitlines()[-1])
    assert metrics['toy/mae'] > 0


@pytest.mark.parametrize('tool', ['train.py', 'test.py'])
def test_help(tool):
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools' / tool), '--help'],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    for switch in ('--work-dir', '--amp', '--cfg-options', '--launcher'):
        assert switch in completed.stdout
    if tool == 'train.py':
        assert '--resume' in completed.stdout


@pytest.mark.slow
def test_video_training_data_workers_own_batch_slots(toy_config):
    config, tmp_path, package_root = toy_config
    videos = tmp_path / 'toy_videos.py'
    videos.write_text(
        textwrap.dedent(f"""
        _base_ = '{config}'
        train_dataloader = dict(
            batch_size=4, num_workers=2, persistent_workers=True,
            sampler=dict(_delete_=True, type='SequentialGroupSampler', batch_size=4),
            dataset=dict(type='ToyVideoSequenceDataset'))
        """)
    )
    log = run_tool(
        'train.py',
        videos,
        '--work-dir',
        tmp_path / 'work',
        '--cfg-options',
        'train_cfg.max_iters=3',
        'default_hooks.logger.interval=1',
        pythonpath=package_root,
    )
    assert 'slot_workers=auto: 2 data workers each own 2 of the 4 batch slots' in log
    assert 'small_tensors_by_value: the data workers send tensors of at most 256 KiB' in log
    assert 'Iter(train) [3/3]' in log  # the model checked every batch's workers


def test_train_config_applies_switches(toy_config):
    config, tmp_path, _ = toy_config
    cfg = make_train_config(
        [str(config), '--work-dir', str(tmp_path / 'w'), '--cfg-options', 'train_cfg.max_iters=7']
    )
    assert cfg.work_dir == str(tmp_path / 'w')
    assert cfg.train_cfg.max_iters == 7
    assert cfg.launcher == 'none'
    assert cfg.resume is False

    cfg = make_train_config([str(config), '--resume'])
    assert is_bare_resume(cfg) and cfg.load_from is None
    # A bare --resume keeps load_from: a time-sliced fine-tuning's first slice starts there.
    start = str(tmp_path / 'start.pth')
    cfg = make_train_config([str(config), '--resume', '--cfg-options', f'load_from={start}'])
    assert is_bare_resume(cfg) and cfg.load_from == start
    assert cfg.work_dir == './work_dirs/toy_config'

    cfg = make_train_config(['--compile', str(config)])  # a flag: never takes the config
    assert cfg.custom_hooks[-1] == dict(type='CompileRegionsHook', backend='inductor')
    cfg = make_train_config([str(config), '--compile', '--compile-backend', 'aot_eager'])
    assert cfg.custom_hooks[-1]['backend'] == 'aot_eager'


def test_no_workers_turns_persistent_workers_off_and_says_so(toy_config):
    """torch refuses persistent workers without workers (a traceback at the first batch):
    num_workers=0 on the command line, to debug in one process, just works."""
    config, tmp_path, _ = toy_config
    options = ['train_dataloader.num_workers=2', 'train_dataloader.persistent_workers=True']
    cfg = make_train_config([str(config), '--cfg-options', *options])
    assert cfg.train_dataloader.persistent_workers is True  # workers: kept as asked
    assert keep_workers_only_with_workers(cfg) == []
    cfg = make_train_config(
        [str(config), '--cfg-options', 'train_dataloader.persistent_workers=True']
    )
    assert cfg.train_dataloader.num_workers == 0
    assert cfg.train_dataloader.persistent_workers is False
    cfg.train_dataloader.persistent_workers = True
    assert keep_workers_only_with_workers(cfg) == ['train_dataloader']  # the logged one
    assert cfg.train_dataloader.persistent_workers is False


def test_annotation_paths_are_checked_before_the_runner_starts(toy_config):
    """A wrong ``ann_file`` is refused naming the path and the config key, before the
    work dir is written (the dataset would fail only once the Runner builds it)."""
    config, tmp_path, _ = toy_config
    (tmp_path / 'no_pickles').mkdir()
    wrong = tmp_path / 'wrong_annotations.py'
    wrong.write_text(
        f"_base_ = ['{config}']\n"
        'train_dataloader = dict(dataset=dict(_delete_=True, type="OVPKLDataset",\n'
        f'    ann_file="no_pickles", data_root="{tmp_path}"))\n'
        'test_dataloader = dict(dataset=dict(_delete_=True, type="OVPKLDataset",\n'
        f'    ann_file="{tmp_path / "missing.pkl"}"))\n'
    )
    work = tmp_path / 'work'
    with pytest.raises(InputError) as refused:
        make_train_config([str(wrong), '--work-dir', str(work)])
    assert str(refused.value) == (
        f'{tmp_path / "no_pickles"}: train_dataloader.dataset.ann_file: folder holds no .pkl '
        'annotation files'
    )
    with pytest.raises(InputError, match='test_dataloader.dataset.ann_file: annotation file'):
        make_test_config([str(wrong), str(config), '--work-dir', str(work)])
    assert not work.exists()


def test_amp_without_cuda_is_a_clear_error(toy_config):
    config, _, _ = toy_config
    if torch.cuda.is_available():
        cfg = make_train_config([str(config), '--amp', 'bf16'])
        assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
        assert cfg.optim_wrapper.dtype == 'bfloat16'
    else:
        with pytest.raises(InputError, match='--amp bf16 needs a CUDA device'):
            make_train_config([str(config), '--amp', 'bf16'])


def test_cuda_graphs_is_refused_where_it_cannot_run(toy_config, tmp_path):
    config, _, _ = toy_config
    with pytest.raises(InputError, match='--cuda-graphs and --compile are alternatives'):
        make_train_config([str(config), '--cuda-graphs', '--compile'])
    if torch.cuda.is_available():
        return
    with pytest.raises(InputError, match='--cuda-graphs needs a CUDA device'):
        make_train_config([str(config), '--cuda-graphs'])


def test_msda_feature_gradient_flag_sets_the_config_key_and_bad_values_are_named(
    toy_config, tmp_path
):
    config, _, _ = toy_config
    cfg = make_train_config([str(config), '--msda-feature-gradient', 'by_destination'])
    assert cfg.msda_feature_gradient == 'by_destination'
    assert make_train_config([str(config)]).get('msda_feature_gradient') is None
    with pytest.raises(SystemExit):  # argparse names the choices
        make_train_config([str(config), '--msda-feature-gradient', 'fp32'])
    typo = tmp_path / 'typo.py'
    typo.write_text(f"_base_ = ['{config}']\nmsda_feature_gradient = 'by_destinaton'\n")
    with pytest.raises(InputError, match="got 'by_destinaton'"):
        make_train_config([str(typo)])


def test_cuda_graph_hints_name_the_settings_that_keep_the_signatures_few():
    # The shipped small config: neither setting on, so both hints; with both, none.
    cfg = Config.fromfile(
        str(REPO_ROOT / 'projects/sparse4d/configs/sparse4d_oae_small_480x272_synthetic.py')
    )
    hints = cuda_graph_hints(cfg)
    assert len(hints) == 2
    assert 'model.head.sampler.static_dn_width=True' in hints[0]
    assert 'model.data_preprocessor.pad_cameras_to=N' in hints[1]
    cfg.merge_from_dict(
        {'model.head.sampler.static_dn_width': True, 'model.data_preprocessor.pad_cameras_to': 12}
    )
    assert cuda_graph_hints(cfg) == []


def test_bad_paths_are_named(toy_config, tmp_path):
    config, _, _ = toy_config
    with pytest.raises(InputError, match='nope.py: config file not found'):
        make_train_config([str(tmp_path / 'nope.py')])
    with pytest.raises(InputError, match='missing.pth: checkpoint to resume from not found'):
        make_train_config([str(config), '--resume', str(tmp_path / 'missing.pth')])
    with pytest.raises(InputError, match='missing.pth: checkpoint not found'):
        make_test_config([str(config), str(tmp_path / 'missing.pth')])
    with pytest.raises(InputError, match='--out must name a .pkl'):
        make_test_config([str(config), str(config), '--out', 'results.txt'])
    a_file = tmp_path / 'a_file'
    a_file.write_text('not a folder')
    with pytest.raises(InputError, match=f'--out {a_file}/p.pkl: {a_file} is a file'):
        make_test_config([str(config), str(config), '--out', str(a_file / 'p.pkl')])
    folder = tmp_path / 'folder.pkl'
    folder.mkdir()
    with pytest.raises(InputError, match=f'--out {folder} is a folder'):
        make_test_config([str(config), str(config), '--out', str(folder)])
    with pytest.raises(InputError, match=f'--work-dir {a_file} is a file, not a folder'):
        make_train_config([str(config), '--work-dir', str(a_file)])
    with pytest.raises(InputError, match=f'--work-dir {a_file}/w: {a_file} is a file'):
        make_test_config([str(config), str(config), '--work-dir', str(a_file / 'w')])
    broken = tmp_path / 'broken.py'
    broken.write_text('model = dict(\n')
    with pytest.raises(InputError, match='broken.py:1: config syntax error'):
        make_train_config([str(broken)])


def test_cfg_options_keys_must_exist(toy_config):
    """A typo in --cfg-options is an error naming the key; legitimate additions (an argument
    of a type-built component, a DataLoader argument) and +-prefixed keys pass."""
    config, tmp_path, _ = toy_config

    def train_config(*options):
        return make_train_config([str(config), '--cfg-options', *options])

    with pytest.raises(InputError, match=r"no top-level key 'train_cfgg' \(did you mean train_cfg"):
        train_config('train_cfgg.max_iters=2')
    # train_cfg is built by type (FastResumeIterBasedTrainLoop): its arguments are the keys
    with pytest.raises(InputError, match='takes no such argument \\(did you mean max_iters'):
        train_config('train_cfg.max_iterz=2')
    assert train_config('train_cfg.val_begin=2').train_cfg.val_begin == 2
    # a plain dict (no type): its keys are the settings
    with pytest.raises(InputError, match="env_cfg.mp_cfg has no key 'mp_start_methd'"):
        train_config('env_cfg.mp_cfg.mp_start_methd=spawn')
    assert train_config('+env_cfg.mp_cfg.new_key=1').env_cfg.mp_cfg.new_key == 1
    with pytest.raises(InputError, match='write \\+env_cfg.mp_cfg.new_key=VALUE'):
        train_config('env_cfg.mp_cfg.new_key=1')
    assert train_config('train_dataloader.pin_memory=True').train_dataloader.pin_memory
    with pytest.raises(InputError, match='did you mean pin_memory'):
        train_config('train_dataloader.pin_memroy=True')
    with pytest.raises(InputError, match='max_iters is int 24000, it has no key'):
        train_config('train_cfg.max_iters.x=1')
    with pytest.raises(InputError, match='custom_hooks is a list of 2 entries'):
        train_config('custom_hooks.5.priority=1')
    cfg = train_config('optim_wrapper.paramwise_cfg.custom_keys.head.lr_mult=0.5')
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys.head.lr_mult == 0.5


def test_evaluation_loaders_take_one_frame_per_step(tmp_path):
    from mmsparse4d.engine.cli import check_evaluation_batches

    cfg = Config(dict(val_dataloader=dict(batch_size=2, sampler=dict(type='SequenceTestSampler'))))
    with pytest.raises(ValueError, match='val_dataloader.batch_size must be 1'):
        check_evaluation_batches(cfg)
    cfg.val_dataloader.batch_size = 1
    check_evaluation_batches(cfg)


def refusal_cases(config, tmp_path):
    """(tool, arguments, what the one stderr line must contain) for bad input."""
    work = tmp_path / 'never'
    a_file = tmp_path / 'a_file'
    a_file.write_text('not a folder')
    random_bytes = tmp_path / 'random.pth'
    random_bytes.write_bytes(np.random.default_rng(0).bytes(4096))
    model = torch.nn.Linear(4, 1)
    whole = tmp_path / 'whole.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {'iter': 1}}, whole)
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(whole.read_bytes()[:300])
    foreign = tmp_path / 'foreign.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {'lr': np.float64(1e-4)}}, foreign)
    cases = [
        ('train.py', [tmp_path / 'nope.py'], 'nope.py: config file not found'),
        (
            'train.py',
            [config, '--work-dir', work, '--cfg-options', 'train_cfgg.max_iters=2'],
            "no top-level key 'train_cfgg'",
        ),
        ('train.py', [config, '--work-dir', a_file], f'--work-dir {a_file} is a file'),
        (
            'train.py',
            [config, '--work-dir', work, '--resume', random_bytes],
            f'{random_bytes}: not a checkpoint',
        ),
        (
            'test.py',
            [config, tmp_path / 'missing.pth', '--work-dir', work],
            'missing.pth: checkpoint not found',
        ),
        (
            'test.py',
            [config, whole, '--work-dir', work, '--out', tmp_path / 'r.txt'],
            '--out must name a .pkl',
        ),
        (
            'test.py',
            [config, whole, '--work-dir', work, '--out', a_file / 'r.pkl'],
            f'{a_file} is a file, not a folder',
        ),
        (
            'test.py',
            [config, random_bytes, '--work-dir', work],
            f'{random_bytes}: not a checkpoint: neither a torch zip archive nor a torch pickle',
        ),
        ('test.py', [config, truncated, '--work-dir', work], f'{truncated}: truncated checkpoint'),
        ('test.py', [config, foreign, '--work-dir', work], 'loader will not create: numpy'),
    ]
    if not torch.cuda.is_available():
        cases.append(('train.py', [config, '--work-dir', work, '--amp'], '--amp fp16 needs a CUDA'))
    return cases, work


@pytest.mark.slow
def test_bad_input_is_one_line_and_exit_2(toy_config):
    """Each refusal of tools/train.py and tools/test.py: exit 2, one stderr line naming the
    file or argument, no traceback, nothing written."""
    config, tmp_path, package_root = toy_config
    cases, work = refusal_cases(config, tmp_path)
    for tool, args, expected in cases:
        line = refused_line(tool, *args, pythonpath=package_root)
        assert expected in line, (tool, args, line)
        if 'trust its origin' not in line:  # torch's advice: wrong but for a foreign pickle
            assert 'weights_only=False' not in line
        assert not work.exists(), (tool, args)


# A second process holding a work dir's lock as tools/train.py does, until its stdin closes.
def mae_of(log: str) -> str:
    """The last ``toy/mae`` a run logged, as printed."""
    return re.findall(r'toy/mae: ([0-9.]+)', log)[-1]


@pytest.mark.slow
def test_work_dir_lock_and_resume_fallbacks(toy_config):
    """A second run into a locked work dir is refused naming the holder; a killed holder
    leaves no stale lock; a bare --resume passes over an empty last_checkpoint and a
    truncated checkpoint to the newest complete one, says so when it starts from scratch, and
    starts from load_from when it has nothing to resume."""
    config, tmp_path, package_root = toy_config
    work = tmp_path / 'locked'
    work.mkdir()
    with work_dir_held_by_another_process(work) as holder:  # killed holding it: no cleanup
        before = sorted(work.iterdir())
        line = refused_line('train.py', config, '--work-dir', work, pythonpath=package_root)
        assert f'{work}: another training run (pid {holder.pid}) is using this' in line
        assert sorted(work.iterdir()) == before  # nothing written

    common = [
        '--work-dir',
        work,
        '--cfg-options',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.logger.interval=1',
        'train_cfg.val_interval=100',
    ]
    run_tool('train.py', config, *common, 'train_cfg.max_iters=2', pythonpath=package_root)
    assert (work / 'iter_1.pth').is_file() and (work / 'iter_2.pth').is_file()

    (work / 'last_checkpoint').write_text('')  # a run killed while writing it
    newest = work / 'iter_2.pth'
    newest.write_bytes(newest.read_bytes()[:1000])  # killed while saving
    log = run_tool(
        'train.py', config, *common, 'train_cfg.max_iters=3', '--resume', pythonpath=package_root
    )
    assert f'{work / "last_checkpoint"} is empty; iter_2.pth: truncated checkpoint' in log
    assert f'resuming from the newest complete checkpoint {work / "iter_1.pth"}' in log
    assert 'resumed epoch: 0, iter: 1' in log
    assert torch.load(work / 'iter_3.pth')['meta']['iter'] == 3

    for checkpoint in work.glob('*.pth'):
        checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    log = run_tool(
        'train.py', config, *common, 'train_cfg.max_iters=1', '--resume', pythonpath=package_root
    )
    assert f'--resume: no complete checkpoint in {work} (' in log
    assert 'training starts from scratch' in log and 'Iter(train) [1/1]' in log
    assert torch.load(work / 'iter_1.pth')['meta']['iter'] == 1

    # A fine-tuning sliced with a bare --resume: the first slice starts from load_from (not
    # resumed: its iteration and optimizer start afresh), the next resumes its own work.
    start = tmp_path / 'start.pth'
    (work / 'iter_1.pth').rename(start)
    tuning = tmp_path / 'tuning'
    sliced = ['--work-dir', tuning, '--resume', *common[2:], f'load_from={start}']
    log = run_tool('train.py', config, *sliced, 'train_cfg.max_iters=1', pythonpath=package_root)
    assert (
        f'--resume: no complete checkpoint in {tuning} (no last_checkpoint file): '
        f'training starts from load_from {start}' in log
    )
    assert f'Load checkpoint from {start}' in log and 'resumed epoch' not in log
    assert torch.load(tuning / 'iter_1.pth')['meta']['iter'] == 1
    log = run_tool('train.py', config, *sliced, 'train_cfg.max_iters=2', pythonpath=package_root)
    assert f'--resume: resuming from {tuning / "iter_1.pth"}' in log
    assert 'resumed epoch: 0, iter: 1' in log


@pytest.mark.slow
def test_test_runs_from_the_checkpoint_without_the_anchor_file(toy_config):
    """The instance bank's anchors are in the checkpoint: tools/test.py needs no k-means
    anchor file, and its result is the training run's validation of the same weights."""
    config, tmp_path, package_root = toy_config
    anchors = tmp_path / 'anchor_kmeans.npy'
    np.save(anchors, np.random.default_rng(0).normal(size=(6, 11)).astype(np.float32))
    anchored = tmp_path / 'anchored.py'
    anchored.write_text(
        textwrap.dedent(f"""
        _base_ = ['{config}']
        model = dict(_delete_=True, type='ToyAnchoredRegressor', head=dict(instance_bank=dict(
            num_anchor=4, embed_dims=4, anchor='{anchors}', num_temp_instances=0)))
        """)
    )
    work = tmp_path / 'anchored_work'
    log = run_tool(
        'train.py',
        anchored,
        '--work-dir',
        work,
        '--cfg-options',
        'train_cfg.max_iters=1',
        'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1',
        pythonpath=package_root,
    )
    validated = mae_of(log)
    # Fine-tuning from a checkpoint of another shape (mmengine would warn and train on).
    line = refused_line(
        'train.py',
        anchored,
        '--work-dir',
        tmp_path / 'tuned',
        '--cfg-options',
        'model.head.instance_bank.num_anchor=5',
        f'load_from={work / "iter_1.pth"}',
        pythonpath=package_root,
    )
    assert (
        f'checkpoint {work / "iter_1.pth"} does not fit the model of anchored.py to fine-tune '
        'from: head.instance_bank.anchor is [4, 11] there, [5, 11] in the model' in line
    )
    anchors.unlink()
    line = refused_line(
        'train.py', anchored, '--work-dir', tmp_path / 'no_anchors', pythonpath=package_root
    )
    assert line == (
        f'train: {anchors}: InstanceBank: anchor file not found '
        '(model.head.instance_bank.anchor; tools/create_data.py writes it)'
    )
    assert not (tmp_path / 'no_anchors').exists()
    log = run_tool(
        'test.py',
        anchored,
        work / 'iter_1.pth',
        '--work-dir',
        tmp_path / 'test',
        pythonpath=package_root,
    )
    assert (
        f'model.head.instance_bank.anchor: the anchors come from checkpoint '
        f'{work / "iter_1.pth"}; {anchors} is not read'
    ) in log
    assert mae_of(log) == validated


def test_amp_scales_the_loss_for_fp16_only():
    """bf16 trains without a loss scaler (its range is float32's); the disabled scaler
    passes the loss and the step through and accepts an older run's scaler state."""
    from torch.amp import GradScaler

    from mmsparse4d.engine.cli import amp_optim_wrapper

    assert amp_optim_wrapper('fp16') == dict(
        type='AmpOptimWrapper', dtype='float16', loss_scale='dynamic'
    )
    bf16 = amp_optim_wrapper('bf16')
    assert bf16['dtype'] == 'bfloat16' and bf16['loss_scale'] == dict(enabled=False)
    scaler = GradScaler('cuda', **bf16['loss_scale'])  # as AmpOptimWrapper builds it
    weight = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = torch.optim.SGD([weight], lr=0.5)
    loss = (weight * torch.tensor([3.0, 4.0])).sum()
    assert scaler.scale(loss) is loss
    loss.backward()
    scaler.unscale_(optimizer)
    scaler.step(optimizer)
    scaler.update()
    assert torch.equal(weight.detach(), torch.tensor([1.0 - 1.5, -2.0 - 2.0]))
    assert scaler.state_dict() == {}
    scaler.load_state_dict({'scale': 65536.0, '_growth_tracker': 0})  # a checkpoint's
