"""tools/train.py and tools/test.py run the real mmengine Runner on a toy model (CPU)."""

import json
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import torch

from mmsparse4d.engine.cli import make_test_config, make_train_config
from tests.conftest import REPO_ROOT

TOY_MODULES = Path(__file__).with_name('toy_modules.py')


@pytest.fixture(scope='session')
def toy_package(tmp_path_factory):
    """A package holding the toy modules, imported at most once per session."""
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


def run_tool(tool, *args, pythonpath):
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools' / tool), *map(str, args)],
        capture_output=True,
        text=True,
        env={'PYTHONPATH': str(pythonpath), 'PATH': '/usr/bin:/bin', 'HOME': str(pythonpath)},
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed.stdout + completed.stderr


@pytest.mark.slow
def test_train_resume_and_test_on_cpu(toy_config):
    config, tmp_path, package_root = toy_config
    work_dir = tmp_path / 'work'
    common = ['--work-dir', work_dir, '--cfg-options', 'default_hooks.checkpoint.interval=1',
              'default_hooks.logger.interval=1']  # fmt: skip
    log = run_tool(
        'train.py', config, *common, 'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        pythonpath=package_root,
    )  # fmt: skip
    assert 'Iter(train) [2/2]' in log and 'eta:' in log
    assert 'toy/mae' in log  # validation ran during training
    first = torch.load(work_dir / 'iter_2.pth')  # weights-only, torch's default
    assert first['meta']['iter'] == 2
    assert set(first) >= {'state_dict', 'optimizer', 'param_schedulers', 'message_hub'}

    log = run_tool(
        'train.py', config, *common, 'train_cfg.max_iters=3', 'train_cfg.val_interval=3',
        '--resume', pythonpath=package_root,
    )  # fmt: skip
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
        'test.py', config, work_dir / 'iter_3.pth', '--work-dir', test_dir, '--out', results,
        pythonpath=package_root,
    )  # fmt: skip
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
    assert cfg.resume is True and cfg.load_from is None
    assert cfg.work_dir == './work_dirs/toy_config'

    cfg = make_train_config(['--compile', str(config)])  # a flag: never takes the config
    assert cfg.custom_hooks[-1] == dict(type='CompileRegionsHook', backend='inductor')
    cfg = make_train_config([str(config), '--compile', '--compile-backend', 'aot_eager'])
    assert cfg.custom_hooks[-1]['backend'] == 'aot_eager'


def test_amp_without_cuda_is_a_clear_error(toy_config):
    config, _, _ = toy_config
    if torch.cuda.is_available():
        cfg = make_train_config([str(config), '--amp', 'bf16'])
        assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
        assert cfg.optim_wrapper.dtype == 'bfloat16'
    else:
        with pytest.raises(RuntimeError, match='--amp bf16 needs a CUDA device'):
            make_train_config([str(config), '--amp', 'bf16'])


def test_bad_paths_are_named(toy_config, tmp_path):
    config, _, _ = toy_config
    with pytest.raises(FileNotFoundError, match='config file not found: .*nope.py'):
        make_train_config([str(tmp_path / 'nope.py')])
    with pytest.raises(FileNotFoundError, match='checkpoint to resume from not found'):
        make_train_config([str(config), '--resume', str(tmp_path / 'missing.pth')])
    with pytest.raises(FileNotFoundError, match='checkpoint not found'):
        make_test_config([str(config), str(tmp_path / 'missing.pth')])
    with pytest.raises(ValueError, match='--out must name a .pkl'):
        make_test_config([str(config), str(config), '--out', 'results.txt'])


def test_evaluation_loaders_take_one_frame_per_step(tmp_path):
    from mmengine.config import Config

    from mmsparse4d.engine.cli import check_evaluation_batches

    cfg = Config(dict(val_dataloader=dict(batch_size=2, sampler=dict(type='SequenceTestSampler'))))
    with pytest.raises(ValueError, match='val_dataloader.batch_size must be 1'):
        check_evaluation_batches(cfg)
    cfg.val_dataloader.batch_size = 1
    check_evaluation_batches(cfg)
