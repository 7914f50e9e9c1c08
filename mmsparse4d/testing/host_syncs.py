"""Where a training step makes the host wait for the GPU, by source line.

On CUDA, ``cuda_sync_sites`` is exact: torch's sync debug mode warns at every synchronising
call (``.item()``, ``.nonzero()``, a copy to the host, a boolean mask as an index, ...) and
the warning's Python stack names the line. On the CPU nothing synchronises, so
``cpu_sync_candidates`` lists the calls that would (the same kinds, from a
``TorchFunctionMode``), made by code outside torch: an estimate, which also counts tensors
that a CUDA step keeps on the host (e.g. matching costs already copied there).
"""

import os
import traceback
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

# Tensor methods and torch functions that read a device tensor's values on the host.
READS_VALUES = frozenset(
    {
        'item',
        'tolist',
        'numpy',
        'cpu',
        '__bool__',
        '__int__',
        '__float__',
        '__index__',
        'nonzero',
        'argwhere',
        'unique',
        'unique_consecutive',
        'masked_select',
    }
)
_TORCH_DIR = str(Path(torch.__file__).parent)
_THIS_FILE = __file__
# The warnings machinery's own frames sit between a warning's cause and its handler.
_WARNINGS_FILE = warnings.__file__
_SEP = os.sep


def _call_site() -> tuple[str, bool]:
    """``file:line function`` of the innermost frame outside torch, the warnings module and
    this module, and whether the call came through torch's optimizers."""
    in_optimizer = False
    for frame in reversed(traceback.extract_stack()):
        if frame.filename in (_THIS_FILE, _WARNINGS_FILE):
            continue
        if frame.filename.startswith(_TORCH_DIR):
            in_optimizer |= f'{_SEP}optim{_SEP}' in frame.filename
            continue
        return f'{_short(frame.filename)}:{frame.lineno} {frame.name}', in_optimizer
    return 'unknown', in_optimizer


def _short(filename: str) -> str:
    parts = Path(filename).parts
    for root in ('mmsparse4d', 'projects', 'tools', 'tests', 'mmengine', 'mmdet', 'mmcv'):
        if root in parts:
            return str(Path(*parts[parts.index(root) :]))
    return filename


def _syncing_kind(func, args: tuple, kwargs: dict) -> str | None:
    name = getattr(func, '__name__', '')
    if name in READS_VALUES:
        return name
    if name in ('__getitem__', '__setitem__') and len(args) > 1:
        index = args[1] if isinstance(args[1], tuple) else (args[1],)
        if any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in index):
            return f'{name} with a boolean mask'
    if name == 'where' and len(args) == 1 and not kwargs:
        return 'where(condition)'
    if name == 'repeat_interleave' and 'output_size' not in kwargs and len(args) > 1:
        if isinstance(args[1], torch.Tensor):
            return 'repeat_interleave without output_size'
    return None


class _SyncCandidates(TorchFunctionMode):
    def __init__(self, sites: Counter):
        super().__init__()
        self.sites = sites

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        kind = _syncing_kind(func, args, kwargs)
        if kind is not None:
            site, in_optimizer = _call_site()
            if not in_optimizer:
                self.sites[(kind, site)] += 1
        return func(*args, **kwargs)


@contextmanager
def cpu_sync_candidates() -> Iterator[Counter]:
    """Count, per (kind, call site), the calls inside the block that would make the host wait
    for the GPU on CUDA. Torch's own optimizer code is left out (its step counters live on
    the host)."""
    sites: Counter = Counter()
    with _SyncCandidates(sites):
        yield sites


@contextmanager
def cuda_sync_sites() -> Iterator[Counter]:
    """Count, per (kind, call site), the synchronising CUDA calls inside the block (torch's
    sync debug mode; the kind is its message)."""
    previous_mode = torch.cuda.get_sync_debug_mode()
    with sync_warning_sites() as sites:
        torch.cuda.set_sync_debug_mode('warn')
        try:
            yield sites
        finally:
            torch.cuda.set_sync_debug_mode(previous_mode)


# The text of the warning torch's sync debug mode gives at each synchronising call.
SYNC_WARNING = 'synchronizing CUDA operation'


@contextmanager
def sync_warning_sites() -> Iterator[Counter]:
    """Count, per (kind, call site), the sync debug mode's warnings inside the block,
    passing every other warning on."""
    sites: Counter = Counter()
    previous_show = warnings.showwarning

    def record(message, category, filename, lineno, file=None, line=None):
        if SYNC_WARNING not in str(message):
            previous_show(message, category, filename, lineno, file, line)
            return
        sites[('synchronising call', _call_site()[0])] += 1

    with warnings.catch_warnings():
        warnings.simplefilter('always')
        warnings.showwarning = record
        try:
            yield sites
        finally:
            warnings.showwarning = previous_show


def sync_table(sites: Counter, steps: int) -> str:
    """Rows ``calls per step | kind | file:line function``, most frequent first."""
    lines = [f'{"per step":>8}  {"kind":<38} call site']
    for (kind, site), count in sorted(sites.items(), key=lambda item: -item[1]):
        lines.append(f'{count / steps:8.1f}  {kind:<38} {site}')
    lines.append(f'{sum(sites.values()) / steps:8.1f}  in all')
    return '\n'.join(lines)
