"""Data-parallel training (two processes, gloo on the CPU) against one process at the same
global batch: the same losses and gradients, step after step."""

import torch

from mmsparse4d.testing.distributed_equivalence import (
    compare_one_and_several_processes,
    deterministic_config,
    largest_differences,
    relative_tolerance,
)
from tests.conftest import REPO_ROOT

OAE_TINY = REPO_ROOT / 'projects/sparse4d/configs/sparse4d_oae_tiny_synthetic.py'


def test_two_processes_train_as_one_process_at_the_same_global_batch():
    # Three steps: the instance bank and the carried denoising groups join from the second;
    # the samples' camera and box counts differ, so every padding differs between the runs.
    one, several, model = compare_one_and_several_processes(OAE_TINY, processes=2, steps=3)
    size = tuple(deterministic_config(OAE_TINY).image_size)
    tolerance = relative_tolerance(model, size)
    assert tolerance < 0.01  # a loss averaged per process moves gradients by 10-100%
    rows = largest_differences(one, several)
    names = set(rows[-1]['losses'])
    # Every kind of loss took part: per stage, denoising, identity, visibility, depth.
    assert {'loss_cls_dn_1', 'loss_box_dn_1', 'loss_id', 'loss_visibility'} <= names
    assert 'loss_dense_depth' in names
    for step, row in enumerate(rows):
        for name, (alone, mean, difference) in row['losses'].items():
            assert difference <= tolerance, (step, name, alone, mean)
        parameter, difference = row['gradient']
        assert difference <= tolerance, (step, parameter, difference)
    # The processes' gradients really are the all-reduced ones (not rank 0's own).
    assert all(torch.isfinite(g).all() for g in several[-1]['gradients'].values())
