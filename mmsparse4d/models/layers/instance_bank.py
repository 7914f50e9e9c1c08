"""The instance bank: learned anchors, the temporal cache and track ids.

Per frame, the head calls ``get`` (anchors, features and the propagated cache), then
``merge_cache`` after the first refinement (600 cached instances + the 300 best new ones),
``cache`` at the end (confidence decay, top-600 kept) and, at inference, ``get_instance_id``.
The scene is in a fixed world (or camera-group) frame: cached anchors are moved forward by
their velocity over the time since the cached frame; an optional per-sample transform moves
them into another frame.

A sample whose scene differs from the cached one, whose timestamp does not increase, or whose
gap exceeds ``max_time_interval`` starts afresh: its cache is dropped (the head gets no
cached instances for it, so nothing stale is attended) and its tracks end.

``temporal_validity='tao'`` is the compatibility setting for NVIDIA TAO's (and upstream
Sparse4D's) rule, under which their checkpoints were trained and run: a cache is valid when
|gap| <= ``max_time_interval`` (no scene check; a gap back in time is valid); an invalid
sample still attends to its stale cache, moved by the whole gap at its velocity, and still
decays its confidences, while its queries are the fresh ones and its tracks end; without
any cache (the first frame, another batch size) the ids restart at 0.

``new_query_exclusion`` (off by default; not in upstream Sparse4D) keeps a second query off
an object the cache already tracks. Upstream merges the cache with the A - T best current
queries whatever they cover, so an object tracked by a carried instance also gets a fresh
query on it, which the temporal decoders must learn to silence; where they do not (a model
trained briefly, or on crowded layouts), the fresh query is a duplicate detection with a new
track id. With ``dict(radius=r, min_confidence=c)``, a current query whose bird's-eye-view
centre lies within r x sqrt(w * l) of a carried instance of confidence >= c (that
instance's footprint) ranks after every other current query in the merge; such queries
still fill the slots when too few others are left. NVIDIA TAO's ``grid_filter``
(``AnchorSelector``) has the same aim with grid cells around every carried anchor,
confident or not (see docs/design.md).
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...registry import MODELS
from ...structures import ANCHOR_DIM, L, W, X, Y
from ...utils.input_error import InputError
from ..utils import stable_topk, to_device
from .key_points_generator import KeyPointsGenerator


class AnchorFileError(InputError, FileNotFoundError):
    """The anchor file (``model.head.instance_bank.anchor``) is not there."""


def load_anchors(anchor, num_anchor: int, log: bool = True) -> np.ndarray:
    """[num_anchor, 11] from an .npy path or an array; errors (``InputError``, one line in
    the tools) name the file, the config key and the shape."""
    if isinstance(anchor, (str, Path)):
        path = Path(anchor)
        if not path.is_file():
            raise AnchorFileError(
                'InstanceBank: anchor file not found (model.head.instance_bank.anchor; '
                'tools/create_data.py writes it)',
                path,
            )
        try:
            anchor = np.load(path)
        except (OSError, ValueError) as error:
            raise InputError(
                f'InstanceBank: not an anchor file (an .npy array [A, 11]): {error}', path
            ) from None
        where = str(path)
    else:
        where = 'anchor'
    anchor = np.asarray(anchor, dtype=np.float32)
    if anchor.ndim != 2 or anchor.shape[1] != ANCHOR_DIM or len(anchor) < num_anchor:
        raise InputError(
            f'InstanceBank: {where} must be [>= {num_anchor}, {ANCHOR_DIM}], got {anchor.shape} '
            f'(num_anchor is {num_anchor}: tools/create_data.py --anchors {num_anchor} writes '
            'such a file, or set model.head.instance_bank.num_anchor)'
        )
    if len(anchor) > num_anchor and log:
        print_log(
            f'InstanceBank: {where} holds {len(anchor)} anchors; the first {num_anchor} are used '
            f'(num_anchor), which k-means did not place as a set (tools/create_data.py '
            f'--anchors {num_anchor} places exactly that many)',
            logger='current',
        )
    return anchor[:num_anchor]


TEMPORAL_VALIDITY = ('strict', 'tao')


@MODELS.register_module()
class InstanceBank(BaseModule):
    """Args:
    num_anchor: queries per frame (900).
    embed_dims: instance feature width (256).
    anchor: [>= num_anchor, 11] array or .npy path (k-means anchors).
    num_temp_instances: instances carried to the next frame (600); 0 disables the cache.
    confidence_decay: factor on a carried instance's confidence per frame (0.8, TAO).
    default_time_interval: seconds assumed without a valid previous frame (1/30).
    max_time_interval: a larger gap starts afresh (seconds).
    anchor_grad / feat_grad: whether anchors / initial features are learned.
    temporal_validity: ``'strict'`` (see the module docstring) or ``'tao'`` (TAO's rule,
        a compatibility setting).
    new_query_exclusion: None, or ``dict(radius, min_confidence)``: current queries near a
        confident carried instance rank last in the merge (see the module docstring);
        radius in units of the carried box's footprint sqrt(w * l).
    """

    def __init__(
        self,
        num_anchor=900,
        embed_dims=256,
        anchor=None,
        num_temp_instances=600,
        confidence_decay=0.8,
        default_time_interval=1 / 30,
        max_time_interval=2.0,
        anchor_grad=True,
        feat_grad=False,
        temporal_validity='strict',
        new_query_exclusion=None,
        init_cfg=None,
    ):
        super().__init__(init_cfg)
        self.new_query_exclusion = self._check_exclusion(new_query_exclusion)
        if temporal_validity not in TEMPORAL_VALIDITY:
            raise ValueError(
                f'InstanceBank: temporal_validity must be one of {TEMPORAL_VALIDITY}, '
                f'got {temporal_validity!r}'
            )
        self.temporal_validity = temporal_validity
        if anchor is None:
            raise ValueError('InstanceBank: anchor (an .npy path or an array) is required')
        if not 0 <= num_temp_instances < num_anchor:
            raise ValueError(
                f'InstanceBank: num_temp_instances must be in [0, {num_anchor}), '
                f'got {num_temp_instances}'
            )
        self.num_anchor, self.embed_dims = num_anchor, embed_dims
        self.num_temp_instances = num_temp_instances
        self.confidence_decay = confidence_decay
        self.default_time_interval = default_time_interval
        self.max_time_interval = max_time_interval
        self.anchor = nn.Parameter(
            torch.from_numpy(load_anchors(anchor, num_anchor)), requires_grad=anchor_grad
        )
        self.instance_feature = nn.Parameter(
            torch.zeros(num_anchor, embed_dims), requires_grad=feat_grad
        )
        self.reset()

    def init_weights(self) -> None:
        if self.instance_feature.requires_grad:
            nn.init.xavier_uniform_(self.instance_feature.data)

    def reset(self) -> None:
        """Forget the cache and every track (ids restart at 0)."""
        self.reset_cache_only()
        self.temp_confidence = self.timestamps = self.scenes = self.valid = None
        self.any_valid = False
        self.world_to_frame = None
        # The id counter lives on the device (0-dim long tensors once ids are given), so
        # that handing out ids never waits for the device: a pipelined loop can queue the
        # next frame before this one's results reach the host.
        self._next_id: Tensor | int = 0
        self._first_new_id: Tensor | int = 0

    @property
    def next_id(self) -> int:
        """The id the next new instance will get (reads the device counter)."""
        return int(self._next_id)

    @property
    def first_new_id(self) -> Tensor | int:
        """Ids from this one on were given by the last ``get_instance_id`` call: a 0-dim long
        tensor on the bank's device (0 before any ids), for comparisons without a host read."""
        return self._first_new_id

    @staticmethod
    def _check_exclusion(setting) -> dict | None:
        if setting is None:
            return None
        if not isinstance(setting, dict) or set(setting) != {'radius', 'min_confidence'}:
            raise ValueError(
                'InstanceBank: new_query_exclusion must be None or dict(radius=..., '
                f'min_confidence=...), got {setting!r}'
            )
        radius, min_confidence = float(setting['radius']), float(setting['min_confidence'])
        if not radius > 0 or not 0 <= min_confidence <= 1:
            raise ValueError(
                'InstanceBank: new_query_exclusion needs radius > 0 and min_confidence in '
                f'[0, 1], got {setting!r}'
            )
        return {'radius': radius, 'min_confidence': min_confidence}

    def initial_queries(self, batch_size: int) -> tuple[Tensor, Tensor]:
        """The learned queries of a frame, before any cache joins: features [B, A, C] and
        anchors [B, A, 11] (views of the parameters)."""
        return (
            self.instance_feature[None].expand(batch_size, -1, -1),
            self.anchor[None].expand(batch_size, -1, -1),
        )

    def get(
        self,
        batch_size: int,
        timestamps: Tensor,
        scenes: Sequence[str],
        transform: Tensor | None = None,
        world_to_frame: Tensor | None = None,
    ) -> dict:
        """Anchors and features for this frame, and the cache moved to it.

        Args:
            timestamps: [B] seconds (float64 keeps sub-millisecond differences).
            scenes: [B] scene (or camera group) names.
            transform: [B, 4, 4] from the cached frame to this one, if they differ.
            world_to_frame: [B, 4, 4] this frame's coordinates from the world's (e.g. a
                training rotation of the whole scene, different for every frame); the
                transform from the cached frame is derived from the previous one's.

        Returns:
            dict: ``instance_feature`` [B, A, C], ``anchor`` [B, A, 11], ``cached_feature``
            [B, T, C], ``cached_anchor`` [B, T, 11] and ``cached_confidence`` [B, T] (None
            when no sample has a valid cache), ``temp_valid`` [B] bool
            (``all_temp_valid``: all of it, a host bool), ``time_interval`` [B] seconds and
            ``transform`` [B, 4, 4] from the cached frame to this one (or None).
        """
        device = self.anchor.device
        # The frame-to-frame checks run on the host (timestamps and scene names are host
        # data), so that ``get`` never waits for the device; a device tensor of timestamps
        # (training batches) is read once here.
        stamps = torch.as_tensor(timestamps, dtype=torch.float64).reshape(batch_size).tolist()
        feature, anchor = self.initial_queries(batch_size)
        out = {
            'instance_feature': feature,
            'anchor': anchor,
            'cached_feature': None,
            'cached_anchor': None,
            'cached_confidence': None,
            'temp_valid': torch.zeros(batch_size, dtype=torch.bool, device=device),
            'all_temp_valid': False,
            'time_interval': torch.full((batch_size,), self.default_time_interval, device=device),
            'transform': None,
        }
        previous_frame = self.world_to_frame
        if world_to_frame is not None and previous_frame is not None and transform is None:
            if len(previous_frame) == batch_size:
                transform = (
                    world_to_frame.float() @ torch.linalg.inv_ex(previous_frame.float()).inverse
                )
        self.world_to_frame = world_to_frame
        out['transform'] = transform
        has_cache = self.cached_anchor is not None and len(self.cached_anchor) == batch_size
        if self.temporal_validity == 'tao':
            if not has_cache:
                self.reset()
                self.world_to_frame = world_to_frame
            else:
                self._get_tao(stamps, out, transform)
            self.valid = out['temp_valid']
        elif has_cache:
            valid, interval = [], []
            for now, before, scene, previous_scene in zip(
                stamps, self.timestamps, scenes, self.scenes, strict=True
            ):
                gap = now - before
                ok = scene == previous_scene and 0 < gap <= self.max_time_interval
                valid.append(ok)
                interval.append(gap if ok else self.default_time_interval)
            out['time_interval'] = to_device(interval, device, torch.float32)
            out['temp_valid'] = to_device(valid, device, torch.bool)
            out['all_temp_valid'] = all(valid)
            self.any_valid = any(valid)
            if self.any_valid:
                out['cached_feature'] = self.cached_feature
                out['cached_anchor'] = KeyPointsGenerator.anchor_projection(
                    self.cached_anchor, out['time_interval'], transform
                )
                self.cached_anchor = out['cached_anchor']
                out['cached_confidence'] = self.confidence
            self.valid = out['temp_valid']
        else:
            self.reset_cache_only()
            self.valid = out['temp_valid']
            self.any_valid = False
        self.timestamps, self.scenes = stamps, list(scenes)
        return out

    def _get_tao(self, stamps: list[float], out: dict, transform: Tensor | None) -> None:
        """``get`` under ``temporal_validity='tao'`` with a cache: every sample gets its
        cache, moved by the whole gap; ``temp_valid`` says whose cache is merged."""
        device = self.anchor.device
        gaps = [now - before for now, before in zip(stamps, self.timestamps, strict=True)]
        valid = [abs(gap) <= self.max_time_interval for gap in gaps]
        interval = [
            gap if ok and gap != 0 else self.default_time_interval
            for gap, ok in zip(gaps, valid, strict=True)
        ]
        out['temp_valid'] = to_device(valid, device, torch.bool)
        out['all_temp_valid'] = all(valid)
        out['time_interval'] = to_device(interval, device, torch.float32)
        self.any_valid = True  # every sample attends to its cache, valid or not
        out['cached_feature'] = self.cached_feature
        out['cached_confidence'] = self.confidence
        out['cached_anchor'] = KeyPointsGenerator.anchor_projection(
            self.cached_anchor, to_device(gaps, device, torch.float32), transform
        )
        self.cached_anchor = out['cached_anchor']

    def reset_cache_only(self) -> None:
        """Forget the cached instances and their ids; the id counter goes on."""
        self.cached_feature = self.cached_anchor = self.confidence = None
        self.instance_id = self._cache_index = None

    def merge_cache(
        self,
        instance_feature: Tensor,
        anchor: Tensor,
        cls: Tensor,
        cached_feature: Tensor,
        cached_anchor: Tensor,
        valid: Tensor,
        cached_confidence: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """After the single-frame decoders: slots [0, T) take the cache, [T, A) the A - T
        best current queries; samples without a valid cache keep all current queries. A
        denoising tail beyond A is kept as it is. The cache comes in explicitly (the head
        passes ``get``'s, the exported graph its inputs), so this reads no state.

        Args:
            instance_feature: [B, A (+ D), C]; anchor: [B, A (+ D), 11]; cls: [B, A (+ D), K]
                logits of this frame's queries (and D denoising ones).
            cached_feature: [B, T, C]; cached_anchor: [B, T, 11] moved to this frame.
            valid: [B] bool, the samples whose cache is valid.
            cached_confidence: [B, T] the carried instances' confidences (the bank's
                ``confidence``); needed with ``new_query_exclusion`` only.

        Returns:
            The merged features [B, A (+ D), C] and anchors [B, A (+ D), 11].
        """
        count, keep = self.num_anchor, self.num_anchor - self.num_temp_instances
        feature, current = instance_feature[:, :count], anchor[:, :count]
        rank = cls[:, :count].max(dim=-1).values
        if self.new_query_exclusion is not None:
            if cached_confidence is None:
                raise ValueError(
                    'InstanceBank: new_query_exclusion needs the carried confidences '
                    '(merge_cache(..., cached_confidence=bank.confidence))'
                )
            covered = self.covered_by_tracks(current, cached_anchor, cached_confidence)
            # Below every uncovered query, in their own score order (float32: a bf16 logit
            # minus 1e4 would lose the order).
            rank = rank.float() - covered.float() * 1e4
        best = stable_topk(rank, keep, dim=1)[1]
        selected_feature = feature.gather(1, best[..., None].expand(-1, -1, feature.shape[-1]))
        selected_anchor = current.gather(1, best[..., None].expand(-1, -1, current.shape[-1]))
        valid = valid.reshape(-1, 1, 1)
        merged_feature = torch.where(
            valid, torch.cat([cached_feature, selected_feature], dim=1), feature
        )
        merged_anchor = torch.where(
            valid, torch.cat([cached_anchor, selected_anchor], dim=1), current
        )
        if instance_feature.shape[1] == count:  # no denoising tail (the exported graph)
            return merged_feature, merged_anchor
        return (
            torch.cat([merged_feature, instance_feature[:, count:]], dim=1),
            torch.cat([merged_anchor, anchor[:, count:]], dim=1),
        )

    def covered_by_tracks(
        self, anchor: Tensor, cached_anchor: Tensor, cached_confidence: Tensor
    ) -> Tensor:
        """[B, A] bool: which queries (anchors [B, A, 11]) lie within ``radius`` footprints
        (bird's-eye view) of a carried instance (cached_anchor [B, T, 11]) whose confidence
        [B, T] is at least ``min_confidence``. NaN centres cover nothing and are not
        covered."""
        setting = self.new_query_exclusion
        centre = anchor[..., [X, Y]].float()
        tracked = cached_anchor[..., [X, Y]].float()
        offset = centre[:, :, None] - tracked[:, None]
        distance = offset.pow(2).sum(-1).sqrt()  # [B, A, T]
        footprint = ((cached_anchor[..., W] + cached_anchor[..., L]).float() / 2).exp()
        near = distance < setting['radius'] * footprint[:, None]
        confident = cached_confidence.float() >= setting['min_confidence']
        return (near & confident[:, None]).any(dim=-1)

    def cache(self, instance_feature: Tensor, anchor: Tensor, cls: Tensor) -> None:
        """At the end of a frame: decay carried confidences, keep the top T instances."""
        if self.num_temp_instances <= 0:
            return
        count, temp = self.num_anchor, self.num_temp_instances
        feature = instance_feature[:, :count].detach()
        anchor = anchor[:, :count].detach()
        confidence = cls[:, :count].max(dim=-1).values.sigmoid().detach()
        if self.confidence is not None:
            decayed = torch.maximum(self.confidence * self.confidence_decay, confidence[:, :temp])
            if self.temporal_validity == 'strict':  # TAO decays a stale cache too
                decayed = torch.where(self.valid[:, None], decayed, confidence[:, :temp])
            confidence = torch.cat([decayed, confidence[:, temp:]], dim=1)
        self.temp_confidence = confidence
        self.confidence, index = stable_topk(confidence, temp, dim=1)
        self._cache_index = index
        self.cached_feature = feature.gather(1, index[..., None].expand(-1, -1, feature.shape[-1]))
        self.cached_anchor = anchor.gather(1, index[..., None].expand(-1, -1, anchor.shape[-1]))

    @property
    def cache_index(self) -> Tensor | None:
        """[B, T] which of this frame's queries ``cache`` kept, in cache-slot order."""
        return self._cache_index

    def get_instance_id(self, cls: Tensor, threshold: float | None = None) -> Tensor:
        """Track ids [B, A] of this frame's queries: carried slots keep their ids, others
        scoring at least ``threshold`` get new ones; the ids of the instances ``cache`` kept
        are remembered for the next frame. Call after ``cache``. Ids from ``first_new_id``
        on were given in this call. Never waits for the device: new ids are numbered by a
        running count over the new queries (row-major order) from the device counter."""
        count, temp = self.num_anchor, self.num_temp_instances
        confidence = cls[:, :count].max(dim=-1).values.sigmoid()
        ids = torch.full(confidence.shape, -1, dtype=torch.long, device=cls.device)
        if self.instance_id is not None and self.valid is not None:
            ids[:, :temp] = torch.where(self.valid[:, None], self.instance_id, ids[:, :temp])
        new = ids < 0
        if threshold is not None:
            new &= confidence >= threshold
        next_id = self._next_id
        if not isinstance(next_id, Tensor):  # after a reset: made on the device, not copied
            next_id = cls.new_full((), next_id, dtype=torch.long)
        rank = new.flatten().cumsum(0).reshape(new.shape) - 1
        ids = torch.where(new, next_id + rank, ids)
        self._first_new_id = next_id
        self._next_id = next_id + new.sum()
        if self._cache_index is not None:
            self.instance_id = ids.gather(1, self._cache_index)
        return ids
