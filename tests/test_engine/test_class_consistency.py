"""A config's classes agree across its datasets, metrics and head (a child config that
sets class_names anew leaves the base's entries as they were)."""

import textwrap

import pytest
from mmengine.config import Config

from mmsparse4d.engine.class_consistency import check_classes_agree
from mmsparse4d.utils.input_error import InputError
from tests.conftest import REPO_ROOT

SMALL = REPO_ROOT / 'projects/sparse4d/configs/sparse4d_oae_small_480x272_synthetic.py'


def child(tmp_path, body: str) -> Config:
    path = tmp_path / 'mine.py'
    path.write_text(f"_base_ = ['{SMALL}']\n" + textwrap.dedent(body))
    return Config.fromfile(path)


def test_the_shipped_config_agrees():
    check_classes_agree(Config.fromfile(SMALL))


def test_a_class_list_set_in_a_child_config_alone_is_refused(tmp_path):
    cfg = child(
        tmp_path,
        """
        class_names = ('Person', 'Forklift')
        train_dataloader = dict(dataset=dict(metainfo=dict(classes=class_names)))
        """,
    )
    with pytest.raises(InputError, match='the classes differ: train_dataloader.dataset.metainfo'):
        check_classes_agree(cfg)


def test_the_same_classes_in_another_order_are_refused(tmp_path):
    names = "('Forklift', 'Person', 'NovaCarter', 'Transporter', 'FourierGR1T2', 'AgilityDigit')"
    cfg = child(tmp_path, f'train_dataloader = dict(dataset=dict(metainfo=dict(classes={names})))')
    with pytest.raises(InputError) as error:
        check_classes_agree(cfg)
    assert "is ['Forklift', 'Person'" in str(error.value)


def test_a_head_counting_other_classes_is_refused(tmp_path):
    cfg = child(tmp_path, 'model = dict(head=dict(refine_layer=dict(num_cls=2)))')
    with pytest.raises(InputError, match='model.head.refine_layer.num_cls is 2, but .* names 6'):
        check_classes_agree(cfg)
