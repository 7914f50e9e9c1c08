"""Shared test set-up: repository paths, the GPU marker's skip rule, and the threads of a
pytest-xdist worker."""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmsparse4d.datasets.synthetic import write_synthetic_scene

REPO_ROOT = Path(__file__).resolve().parents[1]

# Each pytest-xdist worker (and each tool it runs in a subprocess) gets its share of the
# cores: by default every process takes them all, and two workers on two cores oversubscribe
# them (the suite ran 20% longer on the 2-core CPU machine).
_WORKERS = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '0'))
if _WORKERS > 1:
    _THREADS = max(1, (os.cpu_count() or 1) // _WORKERS)
    for _variable in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ.setdefault(_variable, str(_THREADS))
    torch.set_num_threads(int(os.environ['OMP_NUM_THREADS']))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason='needs a CUDA device (run on the GPU machines)')
    for item in items:
        if 'gpu' in item.keywords:
            item.add_marker(skip_gpu)


def run_repo_tool(tool: str, *args) -> subprocess.CompletedProcess:
    """``python tools/<tool> ARGS`` from the repository root, output captured as text."""
    command = [sys.executable, str(REPO_ROOT / 'tools' / tool), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)


HOLD_LOCK = """
import sys
from mmsparse4d.engine.work_dir_lock import WorkDirLock
lock = WorkDirLock(sys.argv[1]).acquire()  # kept: the lock lives with the open file
print('locked', flush=True)
sys.stdin.read()
"""


@contextlib.contextmanager
def work_dir_held_by_another_process(work: Path):
    """A real second process holding ``work``'s training lock during the block (yielded);
    killed with SIGKILL after it, so no cleanup runs and only the kernel frees the lock."""
    command = [sys.executable, '-c', HOLD_LOCK, str(work)]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout.readline().strip() == 'locked'
            yield holder
        finally:
            holder.send_signal(signal.SIGKILL)


@pytest.fixture
def caplog_mm():
    """The messages mmengine's current logger receives during the test (a live list)."""
    import logging

    from mmengine.logging import MMLogger

    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return REPO_ROOT


# Small generated scenes shared by the dataset and evaluation tests.
SMALL = dict(num_cameras=4, num_objects=6, num_frames=12, width=320, height=180, workers=1)


@pytest.fixture(scope='session')
def h5_scene(tmp_path_factory):
    path = tmp_path_factory.mktemp('scenes') / 'Warehouse_h5'
    model = write_synthetic_scene(path, seed=7, rgb_format='h5', **SMALL)
    return path, model


@pytest.fixture(scope='session')
def mp4_scene(tmp_path_factory):
    path = tmp_path_factory.mktemp('scenes') / 'Warehouse_mp4'
    model = write_synthetic_scene(path, seed=7, rgb_format='mp4', **SMALL)
    return path, model


@pytest.fixture(scope='session')
def converted(h5_scene, tmp_path_factory):
    """The h5 scene converted with two camera groups of 2 and 3 cameras, and 40 anchors."""
    from mmsparse4d.datasets.converters.create_data import GroupingOptions, create_data

    out = tmp_path_factory.mktemp('ovpkl')
    grouping = GroupingOptions(n_groups=2, cameras_per_group=(2, 3), min_overlap_threshold=0.0)
    result = create_data([h5_scene[0]], out, grouping=grouping, num_anchors=40, progress=False)
    return result, h5_scene[0].parent


def shut_workers_down(*loaders_or_iterators):
    """Stop the worker processes behind these loaders or iterators (a ``DataLoader``, a
    ``SlotDataLoader`` or mmengine's infinite iterator) now. Left to the garbage collector,
    as mmengine's iterator leaves them once it has crossed a pass's end, they are stopped
    there, stalling whichever test runs next by 5 s per worker."""
    for owner in loaders_or_iterators:
        for inner in (owner, getattr(owner, 'parts', None)):
            iterator = getattr(inner, '_iterator', None)
            if hasattr(iterator, '_shutdown_workers'):
                iterator._shutdown_workers()
