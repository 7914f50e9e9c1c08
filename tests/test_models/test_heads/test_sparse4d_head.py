"""Sparse4DHead's construction checks, decoupled attention and temporal denoising."""

import pytest
import torch

from mmsparse4d.models.heads import default_operation_order
from mmsparse4d.models.layers import DecoupledMultiheadAttention
from mmsparse4d.models.task_modules import SparseBox3DTarget
from mmsparse4d.testing import build_untrained_model, capture_hazards, random_batch
from mmsparse4d.testing.distributed_equivalence import without_random_layers
from tests.conftest import REPO_ROOT

OAE_TINY = REPO_ROOT / 'projects/sparse4d/configs/sparse4d_oae_tiny_synthetic.py'


def test_default_operation_order_is_sparse4d_v3():
    order = default_operation_order(6, 1)
    assert len(order) == 39
    assert order[:4] == ['deformable', 'ffn', 'norm', 'refine']
    assert order[4:11] == ['temp_gnn', 'gnn', 'norm', 'deformable', 'ffn', 'norm', 'refine']
    assert order.count('refine') == 6


def test_bad_operation_order_is_refused():
    with pytest.raises(ValueError, match=r"unknown operations \['cross'\]"):
        build_untrained_model(operation_order=['cross', 'refine', 'refine'])
    with pytest.raises(ValueError, match='2 refine operations'):
        build_untrained_model(operation_order=default_operation_order(2, 1), num_decoder=3)


def test_decoupled_attention_respects_the_mask_and_keeps_width():
    torch.manual_seed(0)
    attention = DecoupledMultiheadAttention(embed_dims=16, num_heads=2, dropout=0.0)
    attention.init_weights()
    query, pos = torch.randn(1, 4, 16), torch.randn(1, 4, 16)
    blocked = torch.ones(4, 4, dtype=torch.bool)
    blocked[:2, :2] = blocked[2:, 2:] = False  # two groups that cannot see each other
    out = attention(query, pos, attn_mask=blocked)
    assert out.shape == (1, 4, 16)
    changed = query.clone()
    changed[:, 2:] += 1.0
    out_changed = attention(changed, pos, attn_mask=blocked)
    torch.testing.assert_close(out_changed[:, :2], out[:, :2])
    assert not torch.allclose(out_changed[:, 2:], out[:, 2:])
    # Cross-attention to other keys.
    assert attention(query, pos, torch.randn(1, 7, 16), torch.randn(1, 7, 16)).shape == (1, 4, 16)


def test_temporal_denoising_follows_instance_ids():
    torch.manual_seed(0)
    target = SparseBox3DTarget(num_classes=3, num_dn_groups=3, num_temp_dn_groups=2, max_dn_gt=8)
    labels = [torch.tensor([0, 1, 2])]
    anchors = [torch.randn(3, 11)]
    ids = [torch.tensor([10, 11, 12])]
    dn = target.get_dn_anchors(labels, anchors, ids)
    count = dn['dn_anchor'].shape[1]
    assert count == 3 * 2 * 3
    cached = target.cache_dn(dn, torch.randn(1, count, 8), dn['dn_anchor'])
    assert cached['anchor'].shape == (1, 2 * 6, 11)
    # Next frame: object 11 left, object 12 moved, object 13 arrived (4 boxes now).
    next_anchors = [torch.randn(4, 11)]
    next_ids = [torch.tensor([12, 10, 13, 14])]
    next_dn = target.get_dn_anchors([torch.tensor([2, 0, 1, 1])], next_anchors, next_ids)
    feature, anchor, updated = target.update_dn(
        torch.zeros(1, next_dn['dn_anchor'].shape[1], 8),
        next_dn['dn_anchor'],
        next_dn,
        cached,
        torch.tensor([True]),
        target.padded_ground_truth(next_ids, next_anchors, 'cpu'),
    )
    per_group = 2 * 4
    carried = slice(0, 2 * per_group)
    carried_ids = updated['dn_id_target'][0, carried]
    carried_cls = updated['dn_cls_target'][0, carried]
    carried_boxes = updated['dn_box_target'][0, carried]
    for slot in range(2 * per_group):
        instance = int(carried_ids[slot])
        if instance == 11:  # left: no loss at all
            assert carried_cls[slot] == -1 and not updated['dn_valid_mask'][0, slot]
        elif instance in (10, 12) and carried_cls[slot] >= 0:
            index = next_ids[0].tolist().index(instance)
            torch.testing.assert_close(carried_boxes[slot], next_anchors[0][index])
    # The carried features and anchors took the first groups' places; the rest are fresh.
    torch.testing.assert_close(anchor[0, 2 * per_group :], next_dn['dn_anchor'][0, 2 * per_group :])
    assert feature[0, : 2 * 6].abs().sum() > 0
    # A sample without a valid temporal cache keeps its fresh groups.
    _, kept, same = target.update_dn(
        torch.zeros(1, next_dn['dn_anchor'].shape[1], 8),
        next_dn['dn_anchor'],
        next_dn,
        cached,
        torch.tensor([False]),
        target.padded_ground_truth(next_ids, next_anchors, 'cpu'),
    )
    torch.testing.assert_close(kept, next_dn['dn_anchor'])
    torch.testing.assert_close(same['dn_cls_target'], next_dn['dn_cls_target'])


def test_training_over_consecutive_frames_uses_carried_denoising_groups():
    torch.manual_seed(0)
    model = build_untrained_model()
    model.train()
    for frame in range(2):
        data = model.data_preprocessor(random_batch(frame=frame), training=True)
        losses = model(**data, mode='loss')
        assert all(torch.isfinite(v) for v in losses.values())
    assert model.head.dn_cache is not None
    assert model.head.instance_bank.valid.all()


def _per_stage_losses(head, out, stages, matches):
    """The stage losses computed one stage at a time, with the loss modules' plain calls."""
    from mmdet.utils import reduce_mean

    losses = {}
    for stage, (cls_target, box_target, box_weight, assigned) in zip(stages, matches, strict=True):
        cls, box = out['classification'][stage], out['prediction'][stage]
        positive = assigned >= 0
        num_pos = reduce_mean(positive.sum().float()).clamp(min=1.0)
        losses[f'loss_cls_{stage}'] = head.loss_cls(
            cls.flatten(0, 1), cls_target.flatten(), avg_factor=num_pos
        )
        regress = positive & (cls.max(dim=-1).values.sigmoid() > head.cls_threshold_to_reg)
        box_losses = head.loss_reg(
            box.flatten(0, 1),
            box_target.flatten(0, 1),
            (box_weight * head.reg_weights * regress[..., None]).flatten(0, 1),
            avg_factor=num_pos,
            quality=out['quality'][stage].flatten(0, 1),
            mask=regress.flatten(),
        )
        losses.update({f'{name}_{stage}': value for name, value in box_losses.items()})
        targets = out['dn_targets'][stage]
        valid = targets['dn_valid_mask']
        num_dn = reduce_mean(valid.sum().float()).clamp(min=1.0)
        dn_positive = valid & (targets['dn_cls_target'] >= 0)
        losses[f'loss_cls_dn_{stage}'] = head.loss_cls(
            out['dn_classification'][stage].flatten(0, 1),
            targets['dn_cls_target'].flatten(),
            weight=valid.flatten().float(),
            avg_factor=num_dn,
        )
        losses[f'loss_box_dn_{stage}'] = head.loss_reg(
            out['dn_prediction'][stage].flatten(0, 1),
            targets['dn_box_target'].flatten(0, 1),
            (head.reg_weights * dn_positive[..., None]).flatten(0, 1),
            avg_factor=num_dn,
        )['loss_box']
    return losses


def test_the_stages_scored_in_one_pass_give_each_stage_its_own_losses_and_gradients():
    torch.manual_seed(0)
    model = build_untrained_model()
    model.train()
    data = model.data_preprocessor(random_batch(boxes=6), training=True)
    gt = model.targets(data['data_samples'], data['inputs']['img'].device)
    out, _ = model._head_forward(data['inputs'], data['data_samples'], gt)
    head = model.head
    stages = [s for s, cls in enumerate(out['classification']) if cls is not None]
    assert len(stages) > 1 and out.get('dn_classification') is not None
    prior = out.get('prior_gt_ids')
    matches = head.sampler.match_stages(
        [
            (
                out['classification'][s],
                out['prediction'][s],
                prior if s >= head.num_single_frame_decoder else None,
            )
            for s in stages
        ],
        gt['labels'],
        gt['anchors'],
        gt['ids'],
    )
    batched = head._stage_losses(out, stages, matches)
    per_stage = list(zip(*(t.unbind() for t in matches), strict=True))
    reference = _per_stage_losses(head, out, stages, per_stage)
    assert list(batched) == list(reference)
    # float32 sums over at most every query x class of a stage, in another order: each
    # rounding is within eps of the partial sum.
    elements = out['classification'][stages[0]].numel()
    tolerance = elements * torch.finfo(torch.float32).eps
    for name in reference:
        torch.testing.assert_close(batched[name], reference[name], rtol=tolerance, atol=0)
    inputs = [out['classification'][s] for s in stages] + [out['prediction'][s] for s in stages]
    batched_grads = torch.autograd.grad(sum(batched.values()), inputs, retain_graph=True)
    reference_grads = torch.autograd.grad(sum(reference.values()), inputs)
    for got, want in zip(batched_grads, reference_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=tolerance, atol=tolerance * want.abs().max())


def test_new_query_exclusion_trains_and_tracks_over_consecutive_frames():
    torch.manual_seed(0)
    exclusion = {
        'model.head.instance_bank.new_query_exclusion': dict(radius=1.0, min_confidence=0.0)
    }
    model = build_untrained_model(cfg_options=exclusion)
    model.train()
    for frame in range(2):
        data = model.data_preprocessor(random_batch(frame=frame), training=True)
        losses = model(**data, mode='loss')
        assert all(torch.isfinite(v) for v in losses.values())
    assert model.head.instance_bank.valid.all()
    model.eval()
    model.head.reset_temporal_state()
    with torch.no_grad():
        for frame in range(2):
            data = model.data_preprocessor(random_batch(frame=frame), training=False)
            results = model(**data, mode='predict')
    assert model.head.instance_bank.valid.all() and len(results) == 2


def test_carried_groups_reach_a_frame_without_boxes():
    # A sample's carried negatives keep training when its batch (its process's part) has no
    # box this frame, as they do in a batch where another sample has boxes.
    torch.manual_seed(0)
    target = SparseBox3DTarget(num_classes=3, num_dn_groups=2, num_temp_dn_groups=1, max_dn_gt=8)
    anchors, ids = [torch.randn(2, 11)], [torch.tensor([10, 11])]
    dn = target.get_dn_anchors([torch.tensor([0, 1])], anchors, ids)
    cached = target.cache_dn(dn, torch.randn(1, dn['dn_anchor'].shape[1], 8), dn['dn_anchor'])
    nothing = ([torch.zeros(0, dtype=torch.long)], [torch.zeros(0, 11)], [torch.zeros(0)])
    assert target.get_dn_anchors(*nothing) is None  # nothing to denoise, nothing carried
    fresh = target.get_dn_anchors(*nothing, min_per_group=cached['per_group'])
    assert not fresh['dn_valid_mask'].any() and fresh['dn_padding_mask'].all()
    current = target.padded_ground_truth(nothing[2], nothing[1], 'cpu')
    width = fresh['dn_anchor'].shape[1]
    _, _, merged = target.update_dn(
        torch.zeros(1, width, 8), fresh['dn_anchor'], fresh, cached, torch.tensor([True]), current
    )
    carried = merged['dn_cls_target'][0, : cached['per_group']]
    # The positives' objects left (no loss); the negatives stay negatives, with a loss.
    assert (carried[:2] == -1).all() and (carried[2:] == -3).all()
    assert merged['dn_valid_mask'][0, : cached['per_group']].tolist() == [False] * 2 + [True] * 2


def _calls_over_three_training_steps(method: str) -> tuple:
    """The tiny outside-in model after three training steps (denoising groups carried from
    the second), the arguments of every call of its head's ``method`` in them, and the
    method itself."""
    model = build_untrained_model(OAE_TINY)
    model.train()
    head, calls = model.head, []
    original = getattr(head, method)

    def recorded(*args):
        calls.append(args)
        return original(*args)

    setattr(head, method, recorded)
    for step in range(3):
        data = model.data_preprocessor(random_batch(seed=step, frame=step), training=True)
        sum(model(**data, mode='loss').values()).backward()
    return model, calls, original


def test_the_training_decoder_loop_is_capture_safe():
    # The decoders of a training step, with denoising groups carried into them, neither
    # wait for the device nor copy from the host: a CUDA graph can hold them (the step's
    # host work, the matching included, stays outside).
    model, calls, decode_frame = _calls_over_three_training_steps('decode_frame')
    head = model.head
    inputs, carry, num_anchor, all_valid = calls[-1]
    assert carry is not None and inputs['cached_feature'] is not None  # carried, cached
    assert capture_hazards(decode_frame, inputs, carry, num_anchor, all_valid) == []
    # A function of its arguments alone (a graph replays it without its Python): the same
    # outputs twice (dropout off), and the head's state untouched.
    without_random_layers(model)
    state = (head.dn_cache, head.cached_gt_ids, dict(vars(head.instance_bank)))
    with torch.no_grad():
        first, second = (decode_frame(inputs, carry, num_anchor, all_valid) for _ in range(2))
    assert torch.equal(first[0]['anchor'], second[0]['anchor'])
    assert torch.equal(first[1]['dn_cls_target'], second[1]['dn_cls_target'])
    after = (head.dn_cache, head.cached_gt_ids, dict(vars(head.instance_bank)))
    assert all(a is b for a, b in zip(state[:2], after[:2], strict=True))
    assert all(after[2][name] is value for name, value in state[2].items())


def test_the_losses_after_the_matching_are_capture_safe():
    # The stage and denoising losses of a training step with carried groups, given the
    # stacked predictions, matches and reduced denominators: no wait for the device, no host
    # data (the head's loss_graphs hold them), and the same values twice from their
    # arguments alone.
    model, calls, stacked = _calls_over_three_training_steps('_stacked_stage_losses')
    head = model.head
    predictions, targets, reg_weights, threshold = calls[-1]
    assert 'dn_cls' in predictions and 'num_dn' in targets
    assert predictions['cls'].shape[0] == head.num_decoder
    assert capture_hazards(stacked, *calls[-1]) == []
    first, second = (stacked(*calls[-1]) for _ in range(2))
    assert first.keys() == second.keys() and {'loss_cls', 'loss_box', 'loss_box_dn'} <= first.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert all(value.shape == (head.num_decoder,) for value in first.values())
    assert threshold == head.cls_threshold_to_reg and reg_weights is head.reg_weights


def test_a_static_denoising_width_gives_the_losses_of_the_batch_width():
    # Groups max_dn_gt wide whatever the batch holds: more padding rows, masked and
    # loss-free, so the same losses (noise-free copies: the noise drawn depends on the width).
    from mmsparse4d.testing.distributed_equivalence import (
        deterministic_config,
        deterministic_losses,
        losses_beyond_rounding,
    )

    losses = {}
    for static in (False, True):
        cfg = deterministic_config(OAE_TINY)
        cfg.model.head.sampler.static_dn_width = static
        losses[static], model = deterministic_losses(cfg)  # groups carried from step 2
    assert 'loss_box_dn_1' in losses[False][-1]
    assert losses_beyond_rounding(losses[False], losses[True], model) == []
