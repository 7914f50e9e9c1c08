"""Hungarian matching and denoising groups."""

import pytest
import torch

from mmsparse4d.models.task_modules import DN_NEGATIVE, PADDING, SparseBox3DTarget
from mmsparse4d.structures import encode_box


def gt(count, seed=0):
    generator = torch.Generator().manual_seed(seed)
    centre = torch.cat(
        [torch.rand(count, 2, generator=generator) * 20 - 10, torch.full((count, 1), 0.9)], 1
    )
    size = torch.rand(count, 3, generator=generator) + 0.5
    boxes = torch.cat([centre, size, torch.rand(count, 1, generator=generator)], dim=1)
    return encode_box(boxes), torch.arange(count) % 3


def test_queries_on_the_ground_truth_are_matched_to_it():
    target = SparseBox3DTarget(num_classes=3, num_dn_groups=0)
    anchors, labels = gt(4)
    box_pred = torch.randn(1, 20, 11) * 0.1 + torch.tensor([30.0] + [0] * 10)  # far away
    placed = torch.tensor([3, 11, 7, 15])
    box_pred[0, placed] = anchors + 0.01
    cls_pred = torch.zeros(1, 20, 3)
    cls_target, box_target, box_weight = target.sample(cls_pred, box_pred, [labels], [anchors])
    assert cls_target[0, placed].tolist() == labels.tolist()
    others = torch.ones(20, dtype=torch.bool)
    others[placed] = False
    assert (cls_target[0, others] == 3).all() and (box_weight[0, others] == 0).all()
    torch.testing.assert_close(box_target[0, placed], anchors)
    assert (
        box_weight[0, placed, 0].tolist() == [2.0] * 4
        and box_weight[0, placed, 6].tolist() == [0.0] * 4
    )
    empty = target.sample(
        cls_pred, box_pred, [torch.zeros(0, dtype=torch.long)], [torch.zeros(0, 11)]
    )
    assert (empty[0] == 3).all()


def test_denoising_groups():
    target = SparseBox3DTarget(num_classes=3, num_dn_groups=2, max_dn_gt=3)
    (a0, l0), (a1, l1) = gt(5, 1), gt(2, 2)
    dn = target.get_dn_anchors(
        [l0, l1],
        [a0, a1],
        [torch.arange(5) + 10, torch.arange(2) + 20],
        generator=torch.Generator().manual_seed(0),
    )
    per_group = 2 * 3  # positives and negatives of the 3 kept boxes
    assert dn['dn_anchor'].shape == (2, 2 * per_group, 11)
    mask = dn['dn_attn_mask']
    assert mask.shape == (12, 12) and not mask[:6, :6].any() and mask[:6, 6:].all()
    cls0 = dn['dn_cls_target'][0].reshape(2, 2, 3)  # [group, positive/negative copy, slot]
    assert (cls0[:, 0] == l0[:3]).all()  # positives keep their class
    assert (cls0[:, 1] == DN_NEGATIVE).all()  # negatives are trained as background
    cls1 = dn['dn_cls_target'][1].reshape(2, 2, 3)
    assert (cls1[:, :, 2] == PADDING).all() and not dn['dn_valid_mask'][1].reshape(2, 2, 3)[
        :, :, 2
    ].any()
    ids = dn['dn_id_target'][0].reshape(2, 2, 3)
    assert ids[:, 0].tolist() == [[10, 11, 12]] * 2
    # Positive copies stay within one noise scale of their box; negatives are further.
    positive = dn['dn_anchor'][0].reshape(2, 2, 3, 11)[:, 0]
    assert ((positive - a0[:3]).abs() <= target.dn_noise_scale + 1e-6).all()
    negative = dn['dn_anchor'][0].reshape(2, 2, 3, 11)[:, 1]
    assert ((negative - a0[:3]).abs() >= target.dn_noise_scale - 1e-6).all()
    assert target.get_dn_anchors([torch.zeros(0, dtype=torch.long)], [torch.zeros(0, 11)]) is None
    with pytest.raises(ValueError, match='need 11 values'):
        SparseBox3DTarget(num_classes=3, reg_weights=(1.0,) * 10)


def test_temporal_alignment_keeps_a_carried_query_on_its_track():
    target = SparseBox3DTarget(num_classes=2, num_dn_groups=0, temporal_align_threshold=0.5)
    gt_anchor = torch.zeros(1, 11)
    gt_anchor[0, 7] = 1.0
    box = gt_anchor.repeat(3, 1)[None].clone()
    box[0, 0, 0] += 0.2  # query 0: carried, 0.2 m off (cost ~0.1)
    box[0, 1, 0] += 0.0  # query 1: new and exact: Hungarian alone would pick it
    box[0, 2, 0] += 5.0
    cls = torch.zeros(1, 3, 2)
    plain = target.sample(cls, box, [torch.tensor([0])], [gt_anchor], return_indices=True)
    assert plain[3].tolist() == [[-1, 0, -1]]
    prior = torch.tensor([[7, -1, -1]])
    aligned = target.sample(
        cls,
        box,
        [torch.tensor([0])],
        [gt_anchor],
        return_indices=True,
        prior_ids=prior,
        gt_ids=[torch.tensor([7])],
    )
    assert aligned[3].tolist() == [[0, -1, -1]]
    # Too far from its old object (cost above the threshold): ordinary matching again.
    box[0, 0, 0] += 3.0
    far = target.sample(
        cls,
        box,
        [torch.tensor([0])],
        [gt_anchor],
        return_indices=True,
        prior_ids=prior,
        gt_ids=[torch.tensor([7])],
    )
    assert far[3].tolist() == [[-1, 0, -1]]


def test_denoising_reads_the_ground_truth_in_one_transfer(monkeypatch):
    # On a GPU each device-to-host copy waits for the device: the batch's labels, anchors
    # and ids cross together (was three copies per sample), with the same groups.
    target = SparseBox3DTarget(num_classes=3, num_dn_groups=2, max_dn_gt=3)
    samples = [gt(5, 1), gt(2, 2), gt(0, 3)]
    anchors, labels = [a for a, _ in samples], [label for _, label in samples]
    ids = [torch.arange(len(label)) + 100 * b for b, label in enumerate(labels)]
    expected = target.get_dn_anchors(
        labels, anchors, ids, generator=torch.Generator().manual_seed(0)
    )
    copied = []  # the tensors .cpu() was called on (a spy: the real method still runs)
    real_cpu = torch.Tensor.cpu
    monkeypatch.setattr(
        torch.Tensor, 'cpu', lambda self, *a, **k: copied.append(self) or real_cpu(self, *a, **k)
    )
    got = target.get_dn_anchors(labels, anchors, ids, generator=torch.Generator().manual_seed(0))
    # One transfer with all of it: labels, anchors and ids, padded to 5 per sample.
    assert [t.numel() for t in copied] == [3 * 5 + 3 * 5 * 11 + 3 * 5]
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert torch.equal(got[name], value) if torch.is_tensor(value) else got[name] == value
    assert got['dn_id_target'][1].reshape(2, 2, 3)[:, 0, :2].tolist() == [[100, 101]] * 2


def test_a_batch_is_matched_as_its_samples_one_by_one():
    # The costs are computed for the whole batch at once over padded ground truth: padding
    # must never be matched, and no sample's matching may depend on the others'.
    target = SparseBox3DTarget(num_classes=3, num_dn_groups=0)
    generator = torch.Generator().manual_seed(0)
    samples = [gt(count, seed) for seed, count in enumerate([4, 0, 7, 1])]
    anchors, labels = [a for a, _ in samples], [label for _, label in samples]
    anchors[2][3, 8:] = float('nan')  # a box without velocity
    ids = [torch.arange(len(label)) + 10 * b for b, label in enumerate(labels)]
    box_pred = torch.randn(4, 30, 11, generator=generator) * 5
    for b, a in enumerate(anchors):
        box_pred[b, 5 : 5 + len(a)] = a.nan_to_num(0) + 0.05
    cls_pred = torch.randn(4, 30, 3, generator=generator)
    prior = torch.full((4, 30), -1)
    prior[0, 0], prior[2, 1] = 1, 22  # carried queries near their previous objects
    box_pred[0, 0], box_pred[2, 1] = anchors[0][1] + 0.1, anchors[2][2].nan_to_num(0) + 0.1
    batched = target.sample(
        cls_pred, box_pred, labels, anchors, return_indices=True, prior_ids=prior, gt_ids=ids
    )
    assert batched[3][0, 0] == 1 and batched[3][2, 1] == 2  # kept on their tracks
    for b in range(4):
        alone = target.sample(
            cls_pred[b : b + 1],
            box_pred[b : b + 1],
            labels[b : b + 1],
            anchors[b : b + 1],
            return_indices=True,
            prior_ids=prior[b : b + 1],
            gt_ids=ids[b : b + 1],
        )
        for got, expected in zip(batched, alone, strict=True):
            assert torch.equal(got[b], expected[0])
    assert (batched[3][1] == -1).all() and sorted(batched[3][2][batched[3][2] >= 0]) == list(
        range(7)
    )


def test_every_decoder_stage_is_matched_in_one_transfer_each_way(monkeypatch):
    # The head matches all its stages against the same ground truth: their costs cross to
    # the host together (one wait for the device per step, was one per stage), with the
    # matches sample() gives each stage alone, aligned stages and plain ones mixed.
    target = SparseBox3DTarget(num_classes=3, num_dn_groups=0)
    generator = torch.Generator().manual_seed(1)
    samples = [gt(count, seed) for seed, count in enumerate([3, 0, 5])]
    anchors, labels = [a for a, _ in samples], [label for _, label in samples]
    ids = [torch.arange(len(label)) + 10 * b for b, label in enumerate(labels)]
    prior = torch.full((3, 12), -1)
    prior[0, 2], prior[2, 0] = 1, 23
    stages = []
    for stage in range(3):
        box = torch.randn(3, 12, 11, generator=generator) * 3
        box[0, 2], box[2, 0] = anchors[0][1] + 0.05, anchors[2][3] + 0.05
        stages.append((torch.randn(3, 12, 3, generator=generator), box, prior if stage else None))
    alone = [
        target.sample(cls, box, labels, anchors, return_indices=True, prior_ids=prior_s, gt_ids=ids)
        for cls, box, prior_s in stages
    ]
    copied = []  # the tensors .cpu() was called on (a spy: the real method still runs)
    real_cpu = torch.Tensor.cpu
    monkeypatch.setattr(
        torch.Tensor, 'cpu', lambda self, *a, **k: copied.append(self) or real_cpu(self, *a, **k)
    )
    stacked = target.match_stages(stages, labels, anchors, ids)
    together = list(zip(*(t.unbind() for t in stacked), strict=True))  # per stage
    # Three stages of costs [3, 12, 5], two of prior ids [3, 12] and the padded ids [3, 5].
    assert [t.numel() for t in copied] == [3 * 3 * 12 * 5 + 2 * 3 * 12 + 3 * 5]
    assert together[1][3][0, 2] == 1 and together[2][3][2, 0] == 3  # aligned stages kept
    for got, expected in zip(together, alone, strict=True):
        for got_part, expected_part in zip(got, expected, strict=True):
            assert torch.equal(got_part, expected_part)
