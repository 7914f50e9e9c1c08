"""Turn the last decoder layer's outputs into scored, labelled, tracked boxes."""

import numpy as np
import torch
from torch import Tensor

from ...registry import TASK_UTILS
from ...structures import decode_anchor
from ...structures.track_ids import FIRST_TRACK_ID
from ..utils import stable_topk
from .motion_heading import MotionHeading
from .track_stitcher import TrackStitcher

CENTERNESS = 0


@TASK_UTILS.register_module()
class SparseBox3DDecoder:
    """Top-k queries by class score, optionally re-scored by predicted centerness.

    Every per-query output (boxes, scores, labels, the raw class scores, track ids and
    instance features) is gathered with the same final order, so they stay aligned after
    the quality re-sort (upstream Sparse4D left ``cls_scores`` in the pre-sort order).

    Optional track-priority duplicate suppression (not in upstream Sparse4D, off by
    default): a model that has not learned one-to-one assignment yet gives an object several
    boxes of near-equal score, each with its own track id, and the ids take turns at being
    the best, which collapses association scores (docs/benchmarks.md). With
    ``duplicate_radius``, boxes are visited oldest track first (smallest id among the ids
    carried from earlier frames; then boxes whose ids are new this frame or who have none,
    best score first; boxes below ``duplicate_min_score`` last) and a box is
    dropped when its bird's-eye-view centre lies within ``duplicate_radius`` x sqrt(w * l)
    of an earlier kept box's centre, the footprint sqrt(w * l) being the smaller of the
    two boxes', whatever the classes (near-duplicates often disagree on the class). Boxes
    below ``duplicate_min_score`` can be dropped but never drop others. The smaller
    footprint keeps one wrong, large box from dropping the objects around it: a carried
    box that grew to 3 km (see ``SparseBox3DRefinementModule``'s ``size_range``) once
    dropped every other box of a frame.

    Args:
        num_output: queries kept per sample.
        score_threshold: drop queries scoring below it (before the quality re-scoring).
        duplicate_radius: suppression radius in units of the footprint size sqrt(w * l)
            (the smaller of the pair's); None disables the suppression.
        duplicate_min_score: class score a box needs to suppress others.
        track_stitching: a ``TrackStitcher`` config (e.g. ``dict(radius=1.0)``): reported
            track ids follow objects across query changes (stateful: see ``decode``'s
            ``restart``); None reports the queries' ids, as upstream.
        motion_heading: a ``MotionHeading`` config (e.g. ``dict(window=20)``): the yaw of
            a box whose track moved far enough becomes the track's direction of travel
            (stateful like the stitching; needs track ids); None keeps the network's yaw.
    """

    def __init__(
        self,
        num_output: int = 300,
        score_threshold: float | None = None,
        duplicate_radius: float | None = None,
        duplicate_min_score: float = 0.0,
        track_stitching: dict | None = None,
        motion_heading: dict | None = None,
    ):
        if duplicate_radius is not None and duplicate_radius <= 0:
            raise ValueError(
                f'SparseBox3DDecoder: duplicate_radius must be > 0 or None, got {duplicate_radius}'
            )
        self.num_output = num_output
        self.score_threshold = score_threshold
        self.duplicate_radius = duplicate_radius
        self.duplicate_min_score = duplicate_min_score
        self.track_stitcher = TrackStitcher(**track_stitching) if track_stitching else None
        self.motion_heading = MotionHeading(**motion_heading) if motion_heading else None

    def reset(self) -> None:
        """Forget the stitched tracks and their motion (the instance bank's ``reset``
        forgets the rest)."""
        if self.track_stitcher is not None:
            self.track_stitcher.reset()
        if self.motion_heading is not None:
            self.motion_heading.reset()

    def decode(
        self,
        cls_logits: Tensor,
        anchors: Tensor,
        quality: Tensor | None = None,
        instance_ids: Tensor | None = None,
        instance_feats: Tensor | None = None,
        extra: dict[str, Tensor] | None = None,
        restart: Tensor | None = None,
        first_new_id: Tensor | int | None = None,
        origin: Tensor | None = None,
    ) -> list[dict]:
        """
        Args:
            cls_logits: [B, A, K]; anchors: [B, A, 11]; quality: [B, A, 2] logits;
            instance_ids: [B, A]; instance_feats: [B, A, C]; extra: more per-query outputs
            [B, A, ...] (e.g. re-identification features), gathered the same way;
            restart: [B] bool, samples whose tracks start afresh (with track stitching: the
            instance bank's ``~valid``); first_new_id: ids from this one on were given
            this frame (the bank's ``first_new_id``): the duplicate suppression ranks them
            by score, not by id.
            origin: [B, 3] metres, the world point each sample's frame is centred on (a
                camera group's origin): added back to the box centres, the one place
                where boxes return to world coordinates. None: boxes stay in the frame.

        Returns:
            list[dict]: per sample, best first, ``bboxes_3d`` [M, 10] (x, y, z, w, l, h,
            yaw, vx, vy, vz; metres, radians, m/s), ``scores_3d`` [M], ``labels_3d`` [M],
            ``cls_scores`` [M] and, where given, ``track_ids`` [M] (numbered from
            ``FIRST_TRACK_ID``, ``mmsparse4d.structures.track_ids``; the instance bank's
            0-based ids never leave the decoder), ``instance_feats`` [M, C] and ``extra``.
        """
        if self.motion_heading is not None and instance_ids is None:
            raise ValueError(
                'SparseBox3DDecoder: motion_heading needs track ids; this decode call got no '
                'instance_ids (set decoder.motion_heading=None for detection without tracking)'
            )
        scores, labels = cls_logits.sigmoid().max(dim=-1)  # one class per query (tracking)
        results = []
        for b in range(cls_logits.shape[0]):
            restarted = bool(restart[b]) if restart is not None else False
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
            if self.duplicate_radius is not None:
                keep = self.keep_oldest_tracks(
                    result['boxes_3d'], cls_scores, result.get('instance_ids'), first_new_id
                )
                result = {name: value[keep] for name, value in result.items()}
            if self.track_stitcher is not None and instance_ids is not None:
                result['instance_ids'] = self.track_stitcher(
                    b,
                    result['boxes_3d'],
                    result['cls_scores'],
                    result['instance_ids'],
                    restart=restarted,
                )
            if self.motion_heading is not None:
                result['boxes_3d'] = self.motion_heading(
                    b, result['boxes_3d'], result['instance_ids'], restart=restarted
                )
            results.append(self._reported(result, origin[b] if origin is not None else None))
        return results

    @staticmethod
    def _reported(result: dict, origin: Tensor | None) -> dict:
        """The output schema: ``bboxes_3d`` (in world coordinates where an origin is given)
        and ``track_ids`` from ``FIRST_TRACK_ID``."""
        boxes = result.pop('boxes_3d')
        if origin is not None:
            boxes = torch.cat([boxes[:, :3] + origin.to(boxes), boxes[:, 3:]], dim=1)
        reported = {'bboxes_3d': boxes}
        if 'instance_ids' in result:
            result['track_ids'] = result.pop('instance_ids') + FIRST_TRACK_ID
        reported.update(result)
        return reported

    def keep_oldest_tracks(
        self,
        boxes: Tensor,
        cls_scores: Tensor,
        instance_ids: Tensor | None,
        first_new_id: Tensor | int | None = None,
    ) -> Tensor:
        """[M] bool: which of the decoded boxes [M, 10] survive the track-priority
        suppression (see the class docstring). Runs on the host: M is at most num_output."""
        boxes, scores = boxes.detach().float().cpu(), cls_scores.detach().float().cpu()
        count = len(boxes)
        ids = (
            instance_ids.detach().cpu()
            if instance_ids is not None
            else torch.full((count,), -1, dtype=torch.long)
        )
        active = scores >= self.duplicate_min_score
        untracked = ids < 0
        if first_new_id is not None:  # born this frame: ranked by score like untracked ones
            # A 0-dim device tensor (the bank's counter) is read here, on the host side.
            untracked |= ids >= int(first_new_id)
        # Visiting order, most significant key last: active first, then tracked before
        # untracked, older (smaller) ids first, then higher scores.
        order = np.lexsort(
            (
                -scores.numpy(),
                torch.where(untracked, 0, ids).numpy(),
                untracked.numpy(),
                ~active.numpy(),
            )
        )
        centre = boxes[:, :2]
        footprint = (boxes[:, 3] * boxes[:, 4]).clamp(min=0).sqrt()
        distance = torch.cdist(centre, centre)
        keep = torch.zeros(count, dtype=torch.bool)
        suppressed = torch.zeros(count, dtype=torch.bool)
        for index in order:
            if suppressed[index]:
                continue
            keep[index] = True
            if active[index]:
                radius = self.duplicate_radius * torch.minimum(footprint[index], footprint)
                suppressed |= distance[index] < radius
        return keep.to(cls_scores.device)
