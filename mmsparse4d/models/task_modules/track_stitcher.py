"""Continue reported tracks when the query that carried them is replaced.

Sparse4D's track id is the identity of a query: an object keeps its id only while the same
cached query stays its best box. A model that has not learned one-to-one assignment yet lets
a fresh query win the object every few frames, and every win is a new id (docs/design.md:
moving objects changed id almost every frame). The stitcher sits after the decoder, on the
reported boxes only, and hands a new query the id of a reported track that lost its box
nearby: tracking by detection as a fallback, explicitly configured (not in upstream).
"""

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from ...registry import TASK_UTILS
from ...structures.track_ids import FIRST_TRACK_ID


@dataclass
class _SampleState:
    frame: int = 0
    track_of_query: dict[int, int] = field(default_factory=dict)
    position: dict[int, np.ndarray] = field(default_factory=dict)  # track -> BEV centre [2]
    last_seen: dict[int, int] = field(default_factory=dict)  # track -> frame


@TASK_UTILS.register_module()
class TrackStitcher:
    """Per frame and sample, on the decoded boxes with class score >= ``min_score``:

    1. A query already assigned to a track reports that track's id (the first claim wins).
    2. The other queries are matched (Hungarian, bird's-eye-view centre distance at most
       ``radius`` metres) to the tracks no box claimed this frame that were last seen at most
       ``max_age`` frames ago; a matched query takes over the track for good.
    3. Unmatched queries start new tracks, numbered by the stitcher from 0 on (numbers are
       never reused, also not after a restart).

    Tracks unseen for more than ``max_age`` frames are forgotten. Boxes below ``min_score``
    get no track (id -1): keep ``min_score`` at or below the threshold at which tracks are
    reported (the submission writers' and the HOTA metric's 0.2), so that every reported
    box has a track. ``restart`` (the instance bank's "no valid cache": a new scene or
    a time gap) forgets a sample's tracks; ``reset`` forgets everything.

    ``continue_score`` (below ``min_score``; ``None``: off) lets a weaker box continue a
    track: after the three steps above, a box scoring in [``continue_score``,
    ``min_score``) whose query carries a track that no stronger box took this frame
    reports that track (it never takes over another track nor starts one). A tracked
    object whose score dips for a few frames then stays reported under its id instead of
    leaving a gap; ``reported`` says which boxes the writers report. Measured on the
    validation scenes it costs HOTA (docs/evaluation.md): off in every shipped config.
    """

    def __init__(
        self,
        radius: float = 1.0,
        max_age: int = 15,
        min_score: float = 0.2,
        continue_score: float | None = None,
    ):
        if radius <= 0 or max_age < 1:
            raise ValueError(
                f'TrackStitcher: radius must be > 0 and max_age >= 1, got {radius}, {max_age}'
            )
        if continue_score is not None and not 0 <= continue_score < min_score:
            raise ValueError(
                f'TrackStitcher: continue_score must lie in [0, min_score={min_score}), '
                f'got {continue_score}'
            )
        self.radius, self.max_age, self.min_score = radius, max_age, min_score
        self.continue_score = continue_score
        self.reset()

    def reported(self, scores: np.ndarray, track_ids: np.ndarray, threshold: float) -> np.ndarray:
        """Which decoded boxes a writer reports [M] bool, of their scores [M] and the track
        ids [M] the decoder reported (from ``FIRST_TRACK_ID``): those scoring at least
        ``threshold`` and, with ``continue_score``, those continuing a track below
        ``min_score``."""
        scores, track_ids = np.asarray(scores), np.asarray(track_ids)
        keep = scores >= threshold
        if self.continue_score is not None:
            keep |= (track_ids >= FIRST_TRACK_ID) & (scores < self.min_score)
        return keep

    def reset(self) -> None:
        self.states: dict[int, _SampleState] = {}
        self.next_track = 0

    def __call__(
        self,
        sample: int,
        boxes: torch.Tensor,
        cls_scores: torch.Tensor,
        instance_ids: torch.Tensor,
        restart: bool,
    ) -> torch.Tensor:
        """Reported track ids [M] for one sample's decoded boxes [M, 10], class scores [M]
        and query ids [M]."""
        if restart or sample not in self.states:
            self.states[sample] = _SampleState()
        state = self.states[sample]
        state.frame += 1
        centres = boxes[:, :2].detach().float().cpu().numpy()
        scores = cls_scores.detach().float().cpu().numpy()
        queries = instance_ids.detach().cpu().numpy().astype(np.int64)
        reported = np.full(len(queries), -1, dtype=np.int64)
        claimed: set[int] = set()

        def claim(index: int, track: int) -> None:
            claimed.add(track)
            reported[index] = track
            state.position[track], state.last_seen[track] = centres[index], state.frame

        def continue_own_track(index: int) -> bool:
            track = state.track_of_query.get(int(queries[index]))
            if track is None or track in claimed:
                return False
            claim(index, track)
            return True

        unassigned, weak = [], []
        for index in np.argsort(-scores, kind='stable'):
            if queries[index] < 0:
                continue
            if scores[index] < self.min_score:
                if self.continue_score is not None and scores[index] >= self.continue_score:
                    weak.append(index)
                continue
            if not continue_own_track(index):
                unassigned.append(index)
        free = [
            track
            for track, seen in state.last_seen.items()
            if track not in claimed and state.frame - seen <= self.max_age
        ]
        matched = {}
        if unassigned and free:
            cost = np.linalg.norm(
                centres[unassigned][:, None] - np.stack([state.position[t] for t in free])[None],
                axis=-1,
            )
            for row, col in zip(*linear_sum_assignment(cost), strict=True):
                if cost[row, col] <= self.radius:
                    matched[unassigned[row]] = free[col]
        for index in unassigned:
            track = matched.get(index)
            if track is None:
                track, self.next_track = self.next_track, self.next_track + 1
            state.track_of_query[int(queries[index])] = track
            claim(index, track)
        # The weaker boxes last, best first: only tracks no stronger box took this frame.
        for index in weak:
            continue_own_track(index)
        expired = {t for t, seen in state.last_seen.items() if state.frame - seen > self.max_age}
        for track in expired:
            del state.last_seen[track], state.position[track]
        state.track_of_query = {q: t for q, t in state.track_of_query.items() if t not in expired}
        return torch.as_tensor(reported, dtype=instance_ids.dtype, device=instance_ids.device)
