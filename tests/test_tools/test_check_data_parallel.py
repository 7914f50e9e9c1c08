"""tools/analysis_tools/check_data_parallel.py refuses what it cannot run, in one line."""

import pytest

from mmsparse4d.utils.input_error import InputError
from tests.conftest import REPO_ROOT
from tools.analysis_tools.check_data_parallel import main

OAE_TINY = REPO_ROOT / 'projects/sparse4d/configs/sparse4d_oae_tiny_synthetic.py'


@pytest.mark.parametrize(
    ('arguments', 'message'),
    [
        (['--processes', '3'], r'--processes 3: must be 2 or more and divide the batch of 4'),
        (['--processes', '1'], r'--processes 1: must be 2 or more'),
        (['--steps', '0'], r'--steps 0: must be >= 1'),
    ],
)
def test_bad_arguments_are_refused(arguments, message):
    with pytest.raises(InputError, match=message):
        main([str(OAE_TINY), *arguments])


def test_a_missing_config_is_named():
    with pytest.raises(InputError, match='no such config'):
        main(['configs/no_such_config.py'])
