"""Where a step would make the host wait for the GPU, named by source line."""

import inspect
import warnings

import pytest
import torch

from mmsparse4d.testing.host_syncs import (
    SYNC_WARNING,
    cpu_sync_candidates,
    cuda_sync_sites,
    sync_table,
    sync_warning_sites,
)


def waits_three_times(x):
    total = x.sum().item()  # a value read on the host
    positive = x[x > 0]  # a boolean mask: the result's size is read on the host
    return total, positive, bool(x.any())


def waits_never(x):
    return (x * (x > 0)).sum(), torch.where(x > 0, x, 0)


def _line_of(function, text):
    lines, first = inspect.getsourcelines(function)
    return first + next(i for i, line in enumerate(lines) if text in line)


def test_cpu_candidates_name_each_waiting_call_and_nothing_else():
    x = torch.randn(8)
    with cpu_sync_candidates() as sites:
        waits_never(x)
    assert not sites
    with cpu_sync_candidates() as sites:
        waits_three_times(x)
        waits_three_times(x)
    here = 'tests/test_testing/test_host_syncs.py'
    assert sites == {
        ('item', f'{here}:{_line_of(waits_three_times, ".item()")} waits_three_times'): 2,
        (
            '__getitem__ with a boolean mask',
            f'{here}:{_line_of(waits_three_times, "x[x > 0]")} waits_three_times',
        ): 2,
        ('__bool__', f'{here}:{_line_of(waits_three_times, "bool(")} waits_three_times'): 2,
    }
    table = sync_table(sites, steps=2).splitlines()
    assert table[-1].split() == ['3.0', 'in', 'all']
    assert all(row.split()[0] == '1.0' for row in table[1:-1])


def test_torch_optimizers_own_reads_are_left_out():
    # Their step counters live on the host in a CUDA run too.
    weight = torch.nn.Parameter(torch.randn(4))
    optimizer = torch.optim.AdamW([weight], lr=1e-3)
    weight.sum().backward()
    with cpu_sync_candidates() as sites:
        optimizer.step()
    assert not sites


def warns_as_a_sync():
    warnings.warn(f'an operation {SYNC_WARNING}', UserWarning, stacklevel=1)


def test_a_sync_warning_names_the_line_that_caused_it_not_the_warnings_module():
    # torch's sync debug mode warns from C++; the Python stack then runs through the
    # warnings module's own frames to the handler.
    with sync_warning_sites() as sites:
        warns_as_a_sync()
        with pytest.warns(UserWarning, match='another warning'):
            warnings.warn('another warning', UserWarning, stacklevel=1)
    line = _line_of(warns_as_a_sync, 'warnings.warn')
    assert sites == {
        ('synchronising call', f'tests/test_testing/test_host_syncs.py:{line} warns_as_a_sync'): 1
    }


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_sites_are_the_synchronising_calls():
    x = torch.randn(8, device='cuda')
    with cuda_sync_sites() as sites:
        waits_never(x)
    assert not sites
    with cuda_sync_sites() as sites:
        waits_three_times(x)
    assert sum(sites.values()) >= 3
    assert all('waits_three_times' in site for _, site in sites)
