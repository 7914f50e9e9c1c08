"""What the host needs to run an exported frame graph, stored with it (JSON)."""

import json
import os

import numpy as np
import onnx
from mmengine.config import Config
from torch import nn

from ..utils.input_error import InputError
from .graph_io import graph_input_names
from .names import OUR_CONTRACT

METADATA_KEY = 'mmsparse4d'


def anchor_range(anchors: np.ndarray) -> tuple[float, float, float, float]:
    """(x_min, y_min, x_max, y_max) metres of anchors [A, >= 2] in the model's frame."""
    anchors = np.asarray(anchors, dtype=np.float64)
    return (
        float(anchors[:, 0].min()),
        float(anchors[:, 1].min()),
        float(anchors[:, 0].max()),
        float(anchors[:, 1].max()),
    )


def graph_metadata(detector: nn.Module, cfg: Config | None = None) -> dict:
    """Settings of a built ``Sparse4D`` for the tracker: image size [H, W], queries,
    cache, channels, classes, cameras, the bank's timing and decay, the decoder's output, the
    graph's input names. Without ``cfg`` (a model run on prepared inputs) the image size and
    the class names are None."""
    head = detector.head
    bank = head.instance_bank
    image_size = class_names = None
    if cfg is not None:
        test_steps = cfg.test_dataloader.dataset.pipeline
        resize = [step for step in test_steps if 'final_size' in step]
        if not resize:
            raise ValueError(
                f'export: the test pipeline of {cfg.filename} has no final_size; the '
                'exported graph needs a fixed image size'
            )
        width, height = resize[-1]['final_size']
        image_size = [int(height), int(width)]
        class_names = list(cfg.get('class_names', cfg.metainfo['classes']))
    aggregations = head.deformable_layers
    return {
        'format': 1,
        'image_size': image_size,
        'num_anchor': int(bank.num_anchor),
        'num_temp_instances': int(bank.num_temp_instances),
        'embed_dims': int(bank.embed_dims),
        'num_decoder': int(head.num_decoder),
        'num_classes': int(head.layers[-1].cls_layers[-1].out_features),
        'class_names': class_names,
        'max_num_cams': int(head.max_num_cams),
        'num_aggregations': len(aggregations),  # one nv::MSDA node each
        'confidence_decay': float(bank.confidence_decay),
        'default_time_interval': float(bank.default_time_interval),
        'max_time_interval': float(bank.max_time_interval),
        'score_threshold': head.decoder.score_threshold,
        'num_output': int(head.decoder.num_output),
        'reid_keys': list(head.reid_branch.output_keys) if head.reid_branch is not None else [],
        'input_names': list(graph_input_names(head)),
        # Where the anchors lie (x_min, y_min, x_max, y_max metres of the model frame), so
        # the host can warn about a scene whose floor they do not reach.
        'anchor_range': list(anchor_range(bank.anchor.detach().cpu().numpy())),
    }


def read_onnx_metadata(path: str | os.PathLike) -> dict:
    """The metadata of an exported graph; a clear error (``InputError``) for a file that
    is not ONNX and for an ONNX file without it."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # noqa: BLE001 - protobuf's decode errors have no common base
        raise InputError(
            f'not an ONNX file ({type(error).__name__}); export one with tools/export.py', path
        ) from None
    props = {prop.key: prop.value for prop in model.metadata_props}
    if METADATA_KEY not in props:
        raise InputError(f'no {METADATA_KEY!r} metadata; export it with tools/export.py', path)
    return json.loads(props[METADATA_KEY])


def require_tracker_contract(metadata: dict, path: str | os.PathLike) -> dict:
    """``metadata`` if its graph follows our contract (the tracker runs that one);
    a graph exported for NVIDIA's deployment stack (``--contract tao-v2.2``: other outputs,
    the frame interval baked in) is refused, saying so."""
    contract = metadata.get('contract', OUR_CONTRACT)
    if contract != OUR_CONTRACT:
        raise InputError(
            f"exported with --contract {contract} for NVIDIA's deployment stack; the tracker "
            'runs graphs of our contract: export again without --contract',
            path=path,
        )
    return metadata
