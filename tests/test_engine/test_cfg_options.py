"""--cfg-options keys are checked against the config (the rule in cfg_options' docstring),
with the real registries resolving each type's constructor."""

import textwrap

import pytest
from mmengine.config import Config

from mmsparse4d.engine.cfg_options import check_cfg_options, check_config_keys
from mmsparse4d.utils.input_error import InputError


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / 'toy.py'
    path.write_text(
        textwrap.dedent("""
        train_cfg = dict(type='FastResumeIterBasedTrainLoop', max_iters=10)
        model = dict(
            type='NotRegisteredAnywhere',
            head=dict(instance_bank=dict(type='InstanceBank', num_anchor=8)),
            decoder=dict(track_stitching=dict(radius=1.0)),
        )
        default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1))
        custom_hooks = [dict(type='WeightsOnlyCheckpointHook')]
        optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4))
        randomness = dict(seed=0)
        pipeline = [dict(type='NotRegisteredAnywhere', scale=1)]
        """)
    )
    return Config.fromfile(path)


@pytest.mark.parametrize(
    'key, message',
    [
        ('train_cfgg.max_iters', "the config .*toy.py has no top-level key 'train_cfgg'"),
        ('train_cfg.max_iterz', 'its FastResumeIterBasedTrainLoop takes no such argument'),
        ('model.head.instance_bank.num_anchors', r'\(did you mean num_anchor'),
        ('model.decoder.track_stitching.radiuss', "track_stitching has no key 'radiuss'"),
        ('pipeline.1.scale', 'pipeline is a list of 1 entries'),
        ('train_cfg.max_iters.x', 'train_cfg.max_iters is int 10, it has no key'),
        ('custom_hooks.0.interval', 'its WeightsOnlyCheckpointHook takes no such argument'),
        ('optim_wrapper.paramwise_cfgg', "optim_wrapper has no key 'paramwise_cfgg'"),
    ],
)
def test_typos_are_refused_naming_the_key(cfg, key, message):
    with pytest.raises(InputError, match=message) as caught:
        check_cfg_options(cfg, {key: 1})
    assert f'--cfg-options {key}: ' in str(caught.value)
    if 'list' not in message and 'is int' not in message:
        assert f'to add it anyway, write +{key}=VALUE' in str(caught.value)


@pytest.mark.parametrize(
    'key',
    [
        'train_cfg.max_iters',  # exists
        'train_cfg.val_interval',  # an argument of the loop's constructor
        'model.head.instance_bank.anchor_grad',  # an argument of InstanceBank
        'model.anything',  # a type that cannot be resolved here: nothing to compare with
        'pipeline.0.anything',
        'default_hooks.checkpoint.save_best',  # CheckpointHook takes **kwargs
        'default_hooks.timer',  # default_hooks' keys are hook names
        'custom_hooks.0.priority',  # the Runner takes a priority from every hook
        'optim_wrapper.paramwise_cfg',  # the optimizer-wrapper constructor's
        'optim_wrapper.accumulative_counts',  # OptimWrapper's
        'randomness.deterministic',  # the Runner's set_randomness
    ],
)
def test_legitimate_keys_pass(cfg, key):
    assert check_cfg_options(cfg, {key: 2}) == {key: 2}


def test_plus_adds_a_key_and_dict_values_are_checked_key_by_key(cfg):
    added = check_cfg_options(cfg, {'+model.decoder.track_stitching.min_score': 0.3})
    assert added == {'model.decoder.track_stitching.min_score': 0.3}
    cfg.merge_from_dict(added)
    assert cfg.model.decoder.track_stitching.min_score == 0.3
    with pytest.raises(InputError, match=r'--cfg-options train_cfg.max_iterz: '):
        check_cfg_options(cfg, {'train_cfg': dict(max_iters=2, max_iterz=2)})
    replaced = {'train_cfg': dict(_delete_=True, type='IterBasedTrainLoop', max_iterz=2)}
    assert check_cfg_options(cfg, replaced) == replaced  # replaces the entry: not compared
    # a new type: its keys are checked against the new type's arguments
    new_type = dict(type='KeyPointsGenerator', anchor_grad=False)  # InstanceBank's argument
    with pytest.raises(InputError, match='its KeyPointsGenerator takes no such argument'):
        check_cfg_options(cfg, {'model.head.instance_bank': new_type})


@pytest.mark.parametrize(
    'entry, message',
    [
        (
            "train_cfg = dict(type='FastResumeIterBasedTrainLoop', max_iter=4)",
            "train_cfg has no key 'max_iter' and its FastResumeIterBasedTrainLoop takes no "
            'such argument (did you mean max_iters',
        ),
        (
            "default_hooks = dict(checkpoint=dict(type='CheckpointHook', intervl=2))",
            "default_hooks.checkpoint has no argument 'intervl' (did you mean interval?)",
        ),
        (
            "train_dataloader = dict(batch_size=2, num_worker=2, dataset=dict(type='OVPKLDataset', "
            "ann_file='x'))",
            "train_dataloader has no key 'num_worker'",
        ),
        (
            "train_dataloader = dict(batch_size=2, dataset=dict(type='OVPKLDataset', ann_fle='x'))",
            "train_dataloader.dataset has no argument 'ann_fle' (did you mean ann_file?)",
        ),
    ],
)
def test_a_typo_in_the_config_file_is_named(tmp_path, entry, message):
    path = tmp_path / 'mine.py'
    path.write_text(entry + '\n')
    cfg = Config.fromfile(path)
    with pytest.raises(InputError) as error:
        check_config_keys(cfg)
    assert str(error.value).startswith(f'{path}: ') and message in str(error.value)
    assert str(error.value).endswith('a typo in the config?')


def test_the_config_file_check_passes_what_its_types_take(cfg):
    check_config_keys(cfg)
    typo = Config(dict(train_cfg=dict(type='FastResumeIterBasedTrainLoop', max_iter=4)))
    check_config_keys(typo, added=['train_cfg.max_iter'])  # --cfg-options +train_cfg.max_iter
    norm = Config(dict(model=dict(type='BN', requires_grad=True)))  # mmcv takes it out
    with pytest.raises(InputError):
        check_config_keys(norm)  # only in a norm_cfg
    check_config_keys(Config(dict(model=dict(norm_cfg=dict(type='BN', requires_grad=True)))))
