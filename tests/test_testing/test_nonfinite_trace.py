"""NonFiniteTrace and tools/analysis_tools/check_amp_gradients.py."""

import sys

import pytest
import torch
from torch import nn

from mmsparse4d.testing.nonfinite_trace import NonFiniteTrace, nonfinite_kind
from mmsparse4d.utils.input_error import InputError
from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / 'tools/analysis_tools'))
import check_amp_gradients  # noqa: E402


class SqrtAtZero(nn.Module):
    """sqrt has an infinite derivative at 0: the gradient reaching its input is inf there."""

    def forward(self, x):
        return x.clamp(min=0).sqrt()


def test_nonfinite_kind():
    assert nonfinite_kind(torch.ones(3)) is None
    assert nonfinite_kind(torch.tensor([1.0, float('nan')])) == 'nan'
    assert nonfinite_kind(torch.tensor([float('inf')])) == 'inf'
    assert nonfinite_kind(torch.tensor([float('nan'), -float('inf')])) == 'nan+inf'
    assert nonfinite_kind(torch.tensor([1, 2])) is None  # integers are never non-finite


def test_the_first_bad_gradient_names_the_module_it_reaches():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 2), SqrtAtZero(), nn.Linear(2, 1))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.zero_()  # the sqrt's input is exactly 0
    with NonFiniteTrace(model) as trace:
        model(torch.ones(1, 2)).sum().backward()
    assert trace.forward is None  # the forward pass is finite
    # Backward order: the output of the last Linear and of the sqrt get finite gradients; the
    # sqrt's backward makes inf, which first reaches the first Linear's output.
    assert str(trace.backward) == '0[0] inf'
    trace.reset()
    assert trace.backward is None
    # Hooks are gone after the block: nothing is recorded any more.
    model(torch.ones(1, 2)).sum().backward()
    assert trace.backward is None


def test_a_nonfinite_forward_output_is_found():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    with torch.no_grad():
        model[1].bias.fill_(float('inf'))
    with NonFiniteTrace(model) as trace:
        model(torch.ones(1, 2))
    assert str(trace.forward) == '1[0] inf'


def test_check_amp_gradients_tool_on_the_tiny_model(capsys):
    rows = check_amp_gradients.main(
        [
            str(REPO_ROOT / 'configs/sparse4d/sparse4d_tiny_synthetic.py'),
            '--steps',
            '2',
            '--batch',
            '1',
            '--cams',
            '2',
            '--size',
            '128',
            '72',
            '--amp',
            'bf16',
        ]
    )
    printed = capsys.readouterr().out
    assert '| step | loss scale |' in printed and len(rows) == 2
    for row in rows:  # bf16 keeps fp32's range: nothing overflows in the tiny model
        assert row['nonfinite_gradients'] == {} and row['scale'] == 1.0
    with pytest.raises(InputError, match='--steps'):  # run_tool makes it exit status 2
        check_amp_gradients.main(['x.py', '--steps', '0'])
