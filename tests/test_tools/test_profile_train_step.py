"""tools/analysis_tools/profile_train_step.py: the compiled regions' graphs and breaks."""

import re

import pytest

from mmsparse4d.utils.input_error import InputError
from tests.conftest import REPO_ROOT
from tools.analysis_tools.profile_train_step import main

TINY = REPO_ROOT / 'configs/sparse4d/sparse4d_tiny_synthetic.py'


# Dynamo reads .grad of the neck's inputs while tracing (its internals, not our code).
@pytest.mark.filterwarnings('ignore:The .grad attribute of a Tensor that is not a leaf')
def test_compiled_regions_report_their_graphs_and_breaks(capsys):
    arguments = '--batch 1 --cams 2 --size 128 72 --boxes 3 --steps 1'
    main([str(TINY), *arguments.split(), '--compile', '--compile-backend', 'eager'])
    printed = capsys.readouterr().out
    found = re.search(r'compiled regions: (\d+) graphs traced .*, (\d+) graph breaks', printed)
    assert found, printed[-2000:]
    assert int(found.group(1)) > 0 and int(found.group(2)) == 0  # the regions trace whole


def test_a_compile_mode_needs_compile():
    with pytest.raises(InputError, match='--compile-mode is for --compile'):
        main([str(TINY), '--compile-mode', 'reduce-overhead'])


def test_the_msda_feature_gradient_is_chosen_and_named(capsys):
    from mmsparse4d.ops import msda_feature_gradient, msda_feature_gradient_mode

    arguments = '--batch 1 --cams 2 --size 128 72 --boxes 3 --steps 1'
    with msda_feature_gradient_mode(None):  # the tool sets the process-wide setting
        main([str(TINY), *arguments.split(), '--msda-feature-gradient', 'by_destination'])
        assert msda_feature_gradient() == 'by_destination'
    assert 'MSDA feature gradient: by_destination (the CUDA backward)' in capsys.readouterr().out
