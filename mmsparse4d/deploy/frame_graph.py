"""The network of one tracking frame as a pure function of its inputs: what ONNX exports.

The instance bank's state lives outside: the tracker (``Sparse4DTracker``) passes the
cache in and gets the full final query set back. Inside the graph are the backbone, the
neck and the head's decoder loop (``Sparse4DHead.run_decoders``, the loop the head's own
``forward`` runs, with the bank's ``merge_cache``: top A - T current queries after the
cached ones); outside are the confidence decay, the top-T caching, the anchor propagation,
the track ids and the decoding. Without a valid cache (``prev_exists`` 0) the temporal
attention attends to the current queries, as the head does (NVIDIA's export differs there
at cold start).

Its inputs and outputs (names, shapes, dtypes) are the table of ``graph_io``. The cache
comes in already moved to this frame; ``prev_exists`` 0 marks a sample without one. The
interval pair is an input only where a refinement divides its velocity output by the frame
interval (upstream's and NVIDIA's models; NVIDIA bakes 1/30 s in); a model whose velocity
output is in m/s (``velocity_per_second=True``) has no such inputs. The cache's confidences
are an input only where the instance bank's ``new_query_exclusion`` reads them
(``graph_io.graph_input_names``). The outputs are every decoder's (or, for tracking, the
last one's) logits, anchors and quality, the full final query set (the host keeps the top
T as the cache) and the re-identification branch's outputs, if any.
"""

import torch
from torch import Tensor, nn

from ..models.utils import pack_feature_maps
from .graph_io import graph_input_names, output_names


class Sparse4DFrameGraph(nn.Module):
    """Wraps a built (and loaded) ``Sparse4D`` detector; shares its modules.

    Args:
        all_stages: every decoder's classification, prediction and quality are outputs (the
            exported graph's interface, as NVIDIA's). False keeps only the last decoder's
            (what tracking reads) and skips the class and quality heads of the decoders in
            between (computed only where the cache merge needs the scores), as the head does
            at inference: a CUDA-graph frame then runs and copies less.

    Raises:
        ValueError: for settings the graph does not support (no carried instances).
    """

    def __init__(self, detector: nn.Module, all_stages: bool = True):
        super().__init__()
        self.all_stages = all_stages
        head = detector.head
        if head.instance_bank.num_temp_instances <= 0:
            raise ValueError(
                'Sparse4DFrameGraph: the model carries no instances '
                '(instance_bank.num_temp_instances = 0); nothing to export as a '
                'tracking graph'
            )
        self.detector = detector
        self.head = head
        reid = head.reid_branch
        self.reid_keys = tuple(reid.output_keys) if reid is not None else ()

    @property
    def input_names(self) -> tuple[str, ...]:
        """The inputs an exported graph has (``forward`` takes all of ``graph_io.INPUT_NAMES``)."""
        return graph_input_names(self.head)

    @property
    def output_names(self) -> tuple[str, ...]:
        return output_names(self.head.num_decoder, self.all_stages, self.reid_keys)

    def forward(
        self,
        img: Tensor,
        projection_mat: Tensor,
        image_wh: Tensor,
        input_cached_feature: Tensor,
        input_cached_anchor: Tensor,
        prev_exists: Tensor,
        interval_mask: Tensor,
        time_interval: Tensor,
        input_cached_confidence: Tensor | None = None,
    ) -> tuple[Tensor, ...]:
        head, bank = self.head, self.head.instance_bank
        levels, _ = self.detector.extract_feat({'img': img})
        batch = img.shape[0]
        interval = torch.where(
            interval_mask.reshape(-1),
            time_interval,
            torch.full_like(time_interval, bank.default_time_interval),
        )
        out = head.run_decoders(
            *bank.initial_queries(batch),
            interval,
            pack_feature_maps(levels),
            projection_mat,
            image_wh,
            input_cached_feature,
            input_cached_anchor,
            prev_exists.reshape(-1) > 0.5,
            all_stage_scores=self.all_stages,
            cached_confidence=input_cached_confidence,
        )
        stages = slice(None) if self.all_stages else slice(-1, None)
        feature, anchor = out['instance_feature'], out['anchor']
        outputs = [
            *out['classification'][stages],
            *out['prediction'][stages],
            *out['quality'][stages],
            feature,
            anchor,
        ]
        if head.reid_branch is not None:
            extra = head.reid_outputs(feature, anchor, levels, projection_mat, image_wh)
            outputs += [extra[key] for key in self.reid_keys]
        return tuple(outputs)
