"""Checks on the fixture's data: the float64 reference, the margins of every discrete
choice, per-frame summaries."""

from __future__ import annotations

import math

import torch

from .settings import NUM_ANCHOR, NUM_OUTPUT, NUM_TEMP_INSTANCES


def float64_reference(outputs: list, outputs64: list) -> tuple[list, list]:
    """The float64 run's numbers a parity test needs, and how far float32 is from them.

    Kept: the head's classification / prediction / quality / instance_id, the decoded
    boxes, scores, labels and ids, and the bank's cached anchors, confidences and ids.
    """
    ref, dev = [], []
    for o32, o64 in zip(outputs, outputs64, strict=True):
        h = o64['head']
        dec = o64['decoded']
        bank = o64['bank_after']
        ref.append(
            {
                'head': {
                    k: h[k] for k in ('classification', 'prediction', 'quality', 'instance_id')
                },
                'decoded': {
                    k: dec[k]
                    for k in ('boxes_3d', 'scores_3d', 'cls_scores', 'labels_3d', 'instance_ids')
                },
                'bank_after': {
                    k: bank[k] for k in ('cached_anchor', 'confidence', 'instance_id', 'prev_id')
                },
            }
        )
        same = (
            torch.equal(o32['head']['instance_id'], h['instance_id'])
            and torch.equal(o32['decoded']['instance_ids'], dec['instance_ids'])
            and torch.equal(o32['decoded']['labels_3d'], dec['labels_3d'])
            and torch.equal(o32['bank_after']['instance_id'], bank['instance_id'])
        )

        def maxdiff(a, b):
            pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None]
            return max(float((x.double() - y).abs().max()) for x, y in pairs)

        dev.append(
            {
                'same_choices': bool(same),
                'classification': maxdiff(o32['head']['classification'], h['classification']),
                'prediction': maxdiff(o32['head']['prediction'], h['prediction']),
                'quality': maxdiff(o32['head']['quality'], h['quality']),
            }
        )
    return ref, dev


def _logit(p: torch.Tensor) -> torch.Tensor:
    return torch.log(p) - torch.log1p(-p)


def _kth_gap(values: torch.Tensor, k: int) -> float | None:
    """values[k-1] - values[k] after a descending sort (the margin of a top-k selection)."""
    s = values.sort(descending=True).values
    return float(s[k - 1] - s[k]) if s.numel() > k else None


def decision_margins(outputs: list, score_threshold: float) -> list[dict]:
    """Per frame, how far TAO's discrete choices are from flipping, in logit units.

    A reimplementation that differs from TAO by less than these margins (its float error)
    makes the same choices: which queries the bank merges and caches, which get new ids,
    which boxes the decoder keeps, their labels and their order.
    """
    lthr = math.log(score_threshold / (1 - score_threshold))
    rows = []
    prev_id = 0
    for o in outputs:
        h, bank = o['head'], o['bank_after']
        first = h['classification'][0][0].max(-1).values
        last = h['classification'][-1][0]
        last_max = last.max(-1).values
        m = {}
        if o['bank_get']['temp_anchor'] is not None and bool(o['bank_get']['mask'].all()):
            # InstanceBank.update: top (A - num_temp) current queries by first-stage logit
            m['update_topk'] = _kth_gap(first, NUM_ANCHOR - NUM_TEMP_INSTANCES)
        # InstanceBank.cache / update_instance_id: top num_temp by (decayed) confidence
        m['cache_topk'] = _kth_gap(_logit(bank['temp_confidence'][0].double()), NUM_TEMP_INSTANCES)
        # get_instance_id: queries without a carried id get one if sigmoid >= threshold
        ids = h['instance_id'][0]
        candidates = (ids < 0) | (ids >= prev_id)
        m['new_id_threshold'] = float((last_max[candidates] - lthr).abs().min())
        prev_id = bank['prev_id']
        # decoder: top num_output by sigmoid(max logit) (matters when both sides pass), the
        # threshold on the kept ones, the class argmax and the score order of the output
        top = last_max.sort(descending=True).values
        if top.numel() > NUM_OUTPUT and top[NUM_OUTPUT] >= lthr:
            m['decoder_topk'] = float(top[NUM_OUTPUT - 1] - top[NUM_OUTPUT])
        m['decoder_threshold'] = float((top[:NUM_OUTPUT] - lthr).abs().min())
        kept = last_max >= lthr
        top2 = last[kept].topk(2, dim=-1).values
        m['label_argmax'] = float((top2[:, 0] - top2[:, 1]).min()) if kept.any() else None
        scores = o['decoded']['scores_3d'].double()
        if scores.numel() > 1:
            m['score_order'] = float((torch.log(scores[:-1]) - torch.log(scores[1:])).min())
        rows.append(m)
    return rows


def summarise(outputs: list) -> list[dict]:
    rows = []
    prev_ids: set[int] = set()
    for t, o in enumerate(outputs):
        ids = [int(i) for i in o['decoded']['instance_ids'].tolist()]
        cur = set(ids)
        rows.append(
            {
                'frame': t,
                'boxes': len(ids),
                'instance_ids': ids,
                'ids_also_in_previous_frame': sorted(cur & prev_ids),
                'cached_with_id': int((o['bank_after']['instance_id'] >= 0).sum()),
                'prev_id_after': o['bank_after']['prev_id'],
                'time_interval': float(o['bank_get']['time_interval'][0]),
                'mask': None if o['bank_get']['mask'] is None else bool(o['bank_get']['mask'][0]),
                'sampling_per_decoder': o['sampling'],
            }
        )
        prev_ids = cur
    return rows
