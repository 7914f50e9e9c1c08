"""tools/model_converters/finetune_start.py on the shipped checkpoint: new anchors in, the id
classifier out, everything else as stored; its refusals."""

import numpy as np
import pytest
import torch

from mmsparse4d.engine.checkpoint_settings import ANCHOR_KEY
from mmsparse4d.testing import build_untrained_model
from mmsparse4d.utils.input_error import InputError
from tests.conftest import REPO_ROOT, run_repo_tool
from tools.model_converters.finetune_start import DEFAULT_DROP, finetune_start

CHECKPOINT = REPO_ROOT / 'checkpoints/sparse4d_oae_small_480x272_synthetic-47bb6a98.pth'
CONFIG = REPO_ROOT / 'projects/sparse4d/configs/sparse4d_oae_small_480x272_protocol.py'
CLASSIFIER = 'head.reid_branch.bnneck.classifier.weight'


@pytest.fixture
def new_anchors(tmp_path):
    anchors = np.random.default_rng(0).normal(size=(300, 11)).astype(np.float32)
    path = tmp_path / 'anchors.npy'
    np.save(path, anchors)
    return path, anchors


def test_anchors_replaced_classifier_left_out_rest_as_stored(tmp_path, new_anchors):
    anchors_file, anchors = new_anchors
    out = tmp_path / 'start.pth'
    done = run_repo_tool(
        'model_converters/finetune_start.py', CHECKPOINT, out, '--anchors', anchors_file
    )
    assert done.returncode == 0, done.stderr
    assert f'left out 1 keys: {CLASSIFIER}' in done.stdout
    source = torch.load(CHECKPOINT, weights_only=True)['state_dict']
    start = torch.load(out, weights_only=True)
    state = start['state_dict']
    torch.testing.assert_close(state[ANCHOR_KEY], torch.from_numpy(anchors), rtol=0, atol=0)
    assert CLASSIFIER not in state and set(state) == set(source) - {CLASSIFIER}
    for key, value in source.items():
        if key not in (ANCHOR_KEY, CLASSIFIER):
            # upcast to float32 exactly: half -> float is lossless
            assert torch.equal(state[key], value.float() if value.is_floating_point() else value)
    assert start['meta']['finetune_start']['dropped'] == [CLASSIFIER]
    # the protocol config's model takes it; the classifier over its own asset ids is the
    # one missing key
    model = build_untrained_model(CONFIG)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert missing == [CLASSIFIER] and unexpected == []


def test_without_anchors_the_learned_ones_are_kept(tmp_path):
    out = tmp_path / 'start.pth'
    assert finetune_start(CHECKPOINT, None, out) == [CLASSIFIER]
    start = torch.load(out, weights_only=True)
    source = torch.load(CHECKPOINT, weights_only=True)['state_dict']
    assert torch.equal(start['state_dict'][ANCHOR_KEY], source[ANCHOR_KEY].float())
    assert start['meta']['finetune_start']['anchors'] == 'learned (kept)'


def test_keep_leaves_the_image_features_and_the_anchors_only(tmp_path, new_anchors):
    """The ablation's start: the backbone and FPN as stored, the new anchors, no head; the
    model loads it with every head weight but the anchors missing."""
    anchors_file, anchors = new_anchors
    out = tmp_path / 'features.pth'
    done = run_repo_tool(
        'model_converters/finetune_start.py',
        CHECKPOINT,
        out,
        '--anchors',
        anchors_file,
        '--drop',
        '--keep',
        'img_backbone',
        'img_neck',
    )
    assert done.returncode == 0, done.stderr
    assert 'left out' in done.stdout and 'all but those under img_backbone, img_neck' in done.stdout
    source = torch.load(CHECKPOINT, weights_only=True)['state_dict']
    start = torch.load(out, weights_only=True)
    state = start['state_dict']
    features = {key for key in source if key.startswith(('img_backbone.', 'img_neck.'))}
    assert features and set(state) == features | {ANCHOR_KEY}
    for key in features:
        stored = source[key]
        assert torch.equal(state[key], stored.float() if stored.is_floating_point() else stored)
    torch.testing.assert_close(state[ANCHOR_KEY], torch.from_numpy(anchors), rtol=0, atol=0)
    assert start['meta']['finetune_start']['kept'] == ['img_backbone', 'img_neck']
    model = build_untrained_model(CONFIG)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert unexpected == [] and missing
    assert not any(key.startswith(('img_backbone.', 'img_neck.', ANCHOR_KEY)) for key in missing)
    # (a BatchNorm's step counter is never reported missing)
    head = {key for key in model.state_dict() if not key.endswith('num_batches_tracked')}
    assert set(missing) == head - set(state)


def test_refusals_name_the_file_and_both_shapes(tmp_path, new_anchors):
    anchors_file, anchors = new_anchors
    wrong = tmp_path / 'wrong.npy'
    np.save(wrong, anchors[:200])
    out = tmp_path / 'o.pth'
    cases = [
        (wrong, DEFAULT_DROP, f'{wrong}: anchors of shape (200, 11), the checkpoint'),
        (tmp_path / 'none.npy', DEFAULT_DROP, 'anchor file not found'),
        (anchors_file, ('head.no_such',), '--drop head.no_such: no such key'),
    ]
    for anchors_path, drop, message in cases:
        with pytest.raises(InputError) as refused:
            finetune_start(CHECKPOINT, anchors_path, out, drop)
        assert message in str(refused.value)
        assert not out.exists()
    with pytest.raises(InputError) as refused:
        finetune_start(CHECKPOINT, anchors_file, out, (), keep=('img_backbone', 'neck'))
    assert '--keep neck: no such key' in str(refused.value)
    assert not out.exists()
    # the tool prints such a refusal as one line, exit status 2
    done = run_repo_tool('model_converters/finetune_start.py', CHECKPOINT, out, '--anchors', wrong)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'finetune_start: {wrong}: anchors of shape')
    assert not out.exists()
