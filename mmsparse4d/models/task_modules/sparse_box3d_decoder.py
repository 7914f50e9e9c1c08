"""Turn the last decoder layer's outputs into scored, labelled, tracked boxes."""

from torch import Tensor

from ...registry import TASK_UTILS
from ...structures import decode_anchor
from ..utils import stable_topk

CENTERNESS = 0


@TASK_UTILS.register_module()
class SparseBox3DDecoder:
    """Top-k queries by class score, optionally re-scored by predicted centerness.

    Every per-query output (boxes, scores, labels, the raw class scores, track ids and
    instance features) is gathered with the same final order, so they stay aligned after
    the quality re-sort (upstream Sparse4D left ``cls_scores`` in the pre-sort order).

    Args:
        num_output: queries kept per sample.
        score_threshold: drop queries scoring below it (before the quality re-scoring).
    """

    def __init__(self, num_output: int = 300, score_threshold: float | None = None):
        self.num_output = num_output
        self.score_threshold = score_threshold

    def decode(
        self,
        cls_logits: Tensor,
        anchors: Tensor,
        quality: Tensor | None = None,
        instance_ids: Tensor | None = None,
        instance_feats: Tensor | None = None,
        extra: dict[str, Tensor] | None = None,
    ) -> list[dict]:
        """
        Args:
            cls_logits: [B, A, K]; anchors: [B, A, 11]; quality: [B, A, 2] logits;
            instance_ids: [B, A]; instance_feats: [B, A, C]; extra: more per-query outputs
            [B, A, ...] (e.g. re-identification features), gathered the same way.

        Returns:
            list[dict]: per sample ``boxes_3d`` [M, 10] (x, y, z, w, l, h, yaw, vx, vy, vz),
            ``scores_3d`` [M], ``labels_3d`` [M], ``cls_scores`` [M] and, where given,
            ``instance_ids`` [M] and ``instance_feats`` [M, C], best first.
        """
        scores, labels = cls_logits.sigmoid().max(dim=-1)  # one class per query (tracking)
        results = []
        for b in range(cls_logits.shape[0]):
            cls_scores, order = stable_topk(scores[b], min(self.num_output, scores.shape[1]))
            if self.score_threshold is not None:
                keep = cls_scores >= self.score_threshold
                cls_scores, order = cls_scores[keep], order[keep]
            final = cls_scores
            if quality is not None:
                final = cls_scores * quality[b, order, CENTERNESS].sigmoid()
                final, resort = final.sort(descending=True, stable=True)
                order, cls_scores = order[resort], cls_scores[resort]
            result = {
                'boxes_3d': decode_anchor(anchors[b, order]),
                'scores_3d': final,
                'labels_3d': labels[b, order],
                'cls_scores': cls_scores,
            }
            if instance_ids is not None:
                result['instance_ids'] = instance_ids[b, order]
            if instance_feats is not None:
                result['instance_feats'] = instance_feats[b, order]
            for name, value in (extra or {}).items():
                result[name] = value[b, order]
            results.append(result)
        return results
