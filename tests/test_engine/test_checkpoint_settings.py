"""load_fitting_checkpoint: what is wrong with a checkpoint file is one line naming it;
use_checkpoint_anchors: a test needs no k-means anchor file when the checkpoint has anchors."""

import numpy as np
import pytest
import torch
from mmengine.config import Config
from torch import nn

from mmsparse4d.engine.checkpoint_settings import load_fitting_checkpoint, use_checkpoint_anchors
from mmsparse4d.models.layers.instance_bank import InstanceBank
from mmsparse4d.utils.input_error import InputError


class Banked(nn.Module):
    """A model with the instance bank where Sparse4D has it (``head.instance_bank``)."""

    def __init__(self, anchor):
        super().__init__()
        self.head = nn.Module()
        self.head.instance_bank = InstanceBank(
            num_anchor=4, embed_dims=8, anchor=anchor, num_temp_instances=0
        )


def bank_config(anchor_path):
    return Config(
        dict(
            model=dict(
                head=dict(
                    instance_bank=dict(
                        type='InstanceBank',
                        num_anchor=4,
                        embed_dims=8,
                        anchor=str(anchor_path),
                        num_temp_instances=0,
                    )
                )
            )
        )
    )


def test_a_file_that_is_no_checkpoint_is_named_with_the_owner(tmp_path):
    model = Banked(np.zeros((4, 11), np.float32))
    random_bytes = tmp_path / 'weights.pth'
    random_bytes.write_bytes(b'\x00' * 64)
    with pytest.raises(InputError) as caught:
        load_fitting_checkpoint(model, random_bytes, Config(), 'Sparse4DTracker')
    assert str(caught.value).startswith(f'Sparse4DTracker: {random_bytes}: not a checkpoint')


def test_a_checkpoint_of_another_model_is_one_line(tmp_path):
    other = tmp_path / 'other.pth'
    torch.save({'state_dict': {'head.instance_bank.anchor': torch.zeros(5, 11)}}, other)
    with pytest.raises(InputError, match='does not fit the model of') as caught:
        load_fitting_checkpoint(Banked(np.zeros((4, 11), np.float32)), other, Config())
    assert '\n' not in str(caught.value) and 'size mismatch' in str(caught.value)


def test_the_anchors_come_from_the_checkpoint(tmp_path):
    trained = Banked(np.random.default_rng(0).normal(size=(6, 11)).astype(np.float32))
    checkpoint = tmp_path / 'iter_9.pth'
    torch.save({'state_dict': trained.state_dict()}, checkpoint)
    missing = tmp_path / 'anchor_init_kmeans.npy'  # never written: the training data's file
    cfg = bank_config(missing)
    loaded = torch.load(checkpoint)
    note = use_checkpoint_anchors(cfg, loaded, checkpoint, tmp_path)
    assert note == (
        f'model.head.instance_bank.anchor: the anchors come from checkpoint '
        f'{checkpoint}; {missing} is not read'
    )
    model = Banked(cfg.model.head.instance_bank.anchor)  # builds without the k-means file
    load_fitting_checkpoint(model, checkpoint, cfg, loaded=loaded)
    torch.testing.assert_close(model.head.instance_bank.anchor, trained.head.instance_bank.anchor)

    assert (
        use_checkpoint_anchors(bank_config(missing), {'state_dict': {}}, checkpoint, tmp_path)
        is None
    )  # no anchors in it: nothing changes
    assert (
        use_checkpoint_anchors(Config(dict(model=dict(type='Toy'))), loaded, checkpoint, tmp_path)
        is None
    )
