"""NVIDIA TAO Sparse4D checkpoints as mmsparse4d checkpoints.

Reads the two layouts TAO's own loader (``utils/misc.load_pretrained_weights``) accepts:

* a TAO checkpoint: PyTorch Lightning's file, weights under ``state_dict`` with the model's
  keys prefixed ``model.`` and the instance bank repeated under ``criterion.`` (the training
  criterion holds the same module); also without the prefix, or as a bare state dict;
* HorizonRobotics Sparse4D v3's (mmdet3d) checkpoint: the same keys without prefix, its
  batch norms with their ``num_batches_tracked`` counters.

Our model has TAO's design (mmdet's ResNet and FPN name their weights as TAO's timm ResNet
and FPN do); the names differ only inside the head's decoder layers. Per operation of
``operation_order`` (``head.layers.{i}.``), ours <- TAO's:

* ``gnn``, ``temp_gnn``: ``attention.*`` <- ``attn.*``; ``fc_before.weight`` and
  ``fc_after.weight`` <- ``head.fc_before.weight`` and ``head.fc_after.weight``, which TAO
  (as upstream) shares between all its attention layers: each of ours gets a copy, equal at
  conversion (they train apart when fine-tuned);
* ``ffn``: ``layers.0.*`` <- ``layers.0.0.*``, ``layers.3.*`` <- ``layers.1.*`` (TAO nests its
  hidden Linear in a Sequential);
* ``refine``: ``layers.0.{j}.*`` <- ``layers.{j}.*``, ``layers.1.*`` <- ``layers.10.*``,
  ``layers.2.scale`` <- ``layers.11.scale``; ``cls_layers`` and ``quality_layers``:
  ``.0.{j}.*`` <- ``.{j}.*``, ``.1.*`` <- ``.6.*`` (TAO flattens the MLP that ours nests);
* ``deformable``, ``norm``: the same names.

Ours have two kinds of weights that TAO's checkpoints lack, filled here: each key point
generator's ``fix_scale`` (a numpy array in TAO, a frozen parameter here: the config's
points, TAO's 7) and, for TAO's frozen batch norms, the counters ``num_batches_tracked``
(0; read only by a momentum-free batch norm). TAO's keys that have no place here are left
out and listed: the ``criterion.`` copies of the instance bank (and any other training-only
weight of the criterion). Everything else must match one to one with equal shapes; a
mismatch is an ``InputError`` naming the key and both shapes, and nothing is written.
"""

import hashlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import mmengine
import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch import Tensor, nn

from ..utils.input_error import InputError
from .checkpoint_files import read_checkpoint
from .checkpoint_settings import ANCHOR_KEY

LIGHTNING_PREFIX = 'model.'
CRITERION_PREFIX = 'criterion.'
# TAO's decoupled attention projections, one pair for the whole head.
SHARED_PROJECTIONS = ('fc_before.weight', 'fc_after.weight')
# TAO's refinement MLP: linear_relu_ln(256, 2, 2), 10 modules, then the Linear and the Scale;
# its class and quality MLPs: linear_relu_ln(256, 1, 2), 6 modules, then the Linear.
REFINE_MLP_MODULES = 10
SCORE_MLP_MODULES = 6
FILLED_FROM_CONFIG = 'kps_generator.fix_scale'
# TAO's classifier of each decoder, [num_classes, C]; ours is head.layers.{i}.cls_layers.1.
TAO_CLASSIFIER = re.compile(rf'head\.layers\.(\d+)\.cls_layers\.{SCORE_MLP_MODULES}\.weight')
BATCH_NORM_COUNTER = 'num_batches_tracked'


@dataclass
class TaoWeights:
    """A TAO checkpoint's model weights, keys without the ``model.`` prefix.

    Attributes:
        state: key -> tensor.
        layout: what the file was, in words.
        dropped: the file's keys left out (``criterion.`` copies and training-only weights).
        names: key of ``state`` -> the key as the file spells it (for messages).
        prefix: the prefix the file's model keys have (``model.`` or none).
        source_meta: the training progress the file records (Lightning's ``epoch`` and
            ``global_step``), if any.
    """

    state: dict[str, Tensor]
    layout: str
    dropped: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    prefix: str = ''
    source_meta: dict = field(default_factory=dict)


@dataclass
class Conversion:
    """What ``convert_state_dict`` did.

    Attributes:
        state: our key -> tensor (float32 where floating), complete for the model.
        shared: TAO key -> our keys it was copied into (more than one).
        filled: our keys TAO's checkpoint has no weights for (their values: the model's
            key points, batch norm counters at 0).
    """

    state: dict[str, Tensor]
    shared: dict[str, list[str]]
    filled: list[str]


def _shape(tensor: Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def _unwrap(checkpoint: dict, path: Path) -> dict:
    if checkpoint.get('state_dict_encrypted'):
        raise InputError(
            'TAO checkpoint with an encrypted state_dict (state_dict_encrypted): decrypt it '
            'with TAO first (its patch_decrypt_checkpoint and your encryption key), then '
            'convert the decrypted file',
            path,
        )
    for name in ('state_dict', 'model'):
        if isinstance(checkpoint.get(name), dict):
            return checkpoint[name]
    if checkpoint and all(isinstance(v, Tensor) for v in checkpoint.values()):
        return checkpoint
    raise InputError(
        f'no state_dict: not a TAO Sparse4D checkpoint (top-level keys: '
        f'{", ".join(sorted(map(str, checkpoint))[:8])})',
        path,
    )


def split_tao_state(state: dict[str, Tensor], path: str | os.PathLike = '') -> TaoWeights:
    """The model's weights of a TAO (or HorizonRobotics) state dict.

    Keys prefixed ``model.`` (Lightning) lose the prefix; ``criterion.`` keys are left out,
    except that a ``criterion.instance_bank.*`` tensor stands in for a missing
    ``head.instance_bank.*`` one. A Lightning file's key with neither prefix is kept as it
    is (and so refused as unexpected).
    """
    lightning = any(key.startswith(LIGHTNING_PREFIX) for key in state)
    weights, names, criterion, dropped = {}, {}, {}, []
    for key, value in state.items():
        if not isinstance(value, Tensor):
            raise InputError(
                f'{key} is a {type(value).__name__}, not a tensor: not a weights state dict', path
            )
        if key.startswith(CRITERION_PREFIX):
            criterion[key[len(CRITERION_PREFIX) :]] = value
            dropped.append(key)
        elif lightning and key.startswith(LIGHTNING_PREFIX):
            weights[key[len(LIGHTNING_PREFIX) :]] = value
            names[key[len(LIGHTNING_PREFIX) :]] = key
        else:
            weights[key] = value
            names[key] = key
    for key, value in criterion.items():
        if key.startswith('instance_bank.') and f'head.{key}' not in weights:
            weights[f'head.{key}'] = value  # the model's copy is missing: this one is used
            names[f'head.{key}'] = CRITERION_PREFIX + key
            dropped.remove(CRITERION_PREFIX + key)
    batch_norm_counters = any(key.endswith(BATCH_NORM_COUNTER) for key in weights)
    if lightning:
        layout = 'TAO Lightning checkpoint (model. prefix)'
    elif batch_norm_counters:
        layout = 'HorizonRobotics Sparse4D v3 (mmdet3d) layout'
    else:
        layout = 'TAO layout without prefix'
    prefix = LIGHTNING_PREFIX if lightning else ''
    return TaoWeights(weights, layout, sorted(dropped), names, prefix)


def read_tao_checkpoint(path: str | os.PathLike) -> TaoWeights:
    """``split_tao_state`` of a checkpoint file (read weights-only: ``read_checkpoint``'s
    errors say what a file is and how to keep the weights of one holding Python objects)."""
    path = Path(path)
    checkpoint = read_checkpoint(path)
    state = _unwrap(checkpoint, path)
    weights = split_tao_state(state, path)
    weights.source_meta = {
        key: checkpoint[key]
        for key in ('epoch', 'global_step', 'pytorch-lightning_version')
        if isinstance(checkpoint.get(key), (int, str))
    }
    return weights


def _renumber(rest: str, rules: list[tuple[str, str]]) -> str:
    for pattern, replacement in rules:
        renamed, count = re.subn(pattern, replacement, rest, count=1)
        if count:
            return renamed
    return rest


_FFN_RULES = [(r'^layers\.0\.', 'layers.0.0.'), (r'^layers\.3\.', 'layers.1.')]
_REFINE_RULES = [
    (r'^layers\.0\.(\d+)\.', r'layers.\1.'),
    (r'^layers\.1\.', f'layers.{REFINE_MLP_MODULES}.'),
    (r'^layers\.2\.', f'layers.{REFINE_MLP_MODULES + 1}.'),
    (r'^(cls_layers|quality_layers)\.0\.(\d+)\.', r'\1.\2.'),
    (r'^(cls_layers|quality_layers)\.1\.', rf'\1.{SCORE_MLP_MODULES}.'),
]


def tao_key(key: str, operation_order: list[str]) -> str | None:
    """The key of TAO's checkpoint (without prefix) that our ``key`` takes its weights from
    (module docstring); None for a weight TAO's checkpoints do not hold (``fix_scale``)."""
    if not key.startswith('head.layers.'):
        return key
    index, rest = key[len('head.layers.') :].split('.', 1)
    op = operation_order[int(index)]
    prefix = f'head.layers.{index}.'
    if op in ('gnn', 'temp_gnn'):
        if rest in SHARED_PROJECTIONS:
            return f'head.{rest}'
        return prefix + re.sub(r'^attention\.', 'attn.', rest)
    if op == 'ffn':
        return prefix + _renumber(rest, _FFN_RULES)
    if op == 'refine':
        return prefix + _renumber(rest, _REFINE_RULES)
    if op == 'deformable' and rest == FILLED_FROM_CONFIG:
        return None
    return key


def _first_and_count(keys: list[str], describe) -> str:
    more = f' and {len(keys) - 1} more' if len(keys) > 1 else ''
    return f'{describe(keys[0])}{more}'


def class_count_problem(
    weights: TaoWeights,
    num_classes: int,
    embed_dims: int,
    class_names: tuple[str, ...] = (),
    config_name: str = 'the config',
) -> str | None:
    """Why the checkpoint's classifiers do not fit ``num_classes``, or None. Needs only the
    config's numbers, so a tool can refuse before it builds the model."""
    for theirs, value in weights.state.items():
        found = TAO_CLASSIFIER.fullmatch(theirs)
        if not found or _shape(value) == (num_classes, embed_dims):
            continue
        have = _shape(value)
        names = f': {", ".join(class_names)}' if class_names else ''
        return (
            f'{weights.names.get(theirs, theirs)} has shape {have} in the checkpoint '
            f'({have[0]} classes), head.layers.{found[1]}.cls_layers.1.weight of {config_name} '
            f'has {(num_classes, embed_dims)} ({num_classes} classes{names}): give a config '
            "with the checkpoint's classes, in its order"
        )
    return None


class _Match:
    """Our keys paired with TAO's, the model's expected tensors, and names for messages."""

    def __init__(self, weights: TaoWeights, model: nn.Module, config_name: str):
        self.tao, self.model, self.config_name = weights.state, model, config_name
        self.weights = weights
        self.expected = model.state_dict()
        order = list(model.head.operation_order)
        self.sources = {ours: tao_key(ours, order) for ours in self.expected}

    def name(self, theirs: str) -> str:
        """TAO's key as the file spells it."""
        return self.weights.names.get(theirs, self.weights.prefix + theirs)

    def mismatched(self, pattern: str):
        """(ours, theirs, their shape, our shape) of keys matching ``pattern`` whose shapes
        differ."""
        for ours, theirs in self.sources.items():
            if theirs in self.tao and re.fullmatch(pattern, ours):
                have, want = _shape(self.tao[theirs]), _shape(self.expected[ours])
                if have != want:
                    yield ours, theirs, have, want

    def weights_fc_problem(self) -> str | None:
        for ours, theirs, have, want in self.mismatched(r'.*\.weights_fc\.weight'):
            layer = self.model.get_submodule(ours[: -len('.weights_fc.weight')])
            per_camera = layer.num_groups * layer.num_levels * layer.num_pts
            if have[0] == per_camera:
                meaning = 'camera embedding on'
            elif have[0] % per_camera == 0:
                meaning = f'camera embedding off, {have[0] // per_camera} camera slots'
            else:
                meaning = f'not a multiple of {per_camera}: other groups, levels or points'
            configured = (
                'camera embedding on'
                if layer.camera_encoder is not None or layer.camera_module is not None
                else f'camera embedding off, max_num_cams {layer.max_num_cams}'
            )
            return (
                f'{self.name(theirs)} has shape {have} in the checkpoint ({meaning}), {ours} of '
                f'{self.config_name} has {want} ({configured}; {per_camera} weights per camera '
                f'= {layer.num_groups} groups x {layer.num_levels} levels x {layer.num_pts} '
                'points): give a config with the use_camera_embed (and max_num_cams) it was '
                'trained with'
            )
        return None


def convert_state_dict(
    weights: TaoWeights,
    model: nn.Module,
    config_name: str = 'the config',
    class_names: tuple[str, ...] = (),
    where: str | os.PathLike | None = None,
) -> Conversion:
    """Our state dict for ``model`` from TAO's model weights.

    Args:
        weights: TAO's weights (``split_tao_state``).
        model: a ``Sparse4D`` built from the target config (its ``head.operation_order``
            places the decoder layers); its state dict gives the keys, shapes and the
            values of the weights TAO lacks.
        config_name: the config, for messages.
        class_names: the config's classes, for messages.
        where: the checkpoint file, prefixed to errors.

    Raises:
        InputError: the checkpoint does not fit the model: class count, aggregation weights
            (camera embedding, camera slots), a missing or unexpected key, another shape;
            the message names the key and both shapes.
    """
    match = _Match(weights, model, config_name)
    tao, expected, sources = match.tao, match.expected, match.sources
    classifier = next(m for m in model.head.layers if hasattr(m, 'cls_layers')).cls_layers[-1]
    for problem in (
        class_count_problem(
            weights, classifier.out_features, classifier.in_features, class_names, config_name
        ),
        match.weights_fc_problem(),
    ):
        if problem:
            raise InputError(problem, where)
    filled = [
        ours
        for ours, theirs in sources.items()
        if theirs is None or (theirs not in tao and ours.endswith(BATCH_NORM_COUNTER))
    ]
    missing = [ours for ours in sources if ours not in filled and sources[ours] not in tao]
    if missing and any(key in tao for key in missing):  # ours are named apart from TAO's
        raise InputError(
            f'already an mmsparse4d checkpoint (it has {missing[0]}): use it as it is', where
        )
    if missing:
        raise InputError(
            'the checkpoint lacks '
            + _first_and_count(
                missing,
                lambda k: (
                    f'{match.name(sources[k])} (for {k} of {config_name}, shape '
                    f'{_shape(expected[k])})'
                ),
            ),
            where,
        )
    unexpected = sorted(set(tao) - set(sources.values()))
    if unexpected:
        hint = ''
        if any(k.startswith(('head.visibility_net.', 'head.bnneck.')) for k in unexpected):
            hint = ": TAO's re-identification branch (use_reid_sampling) is not converted"
        raise InputError(
            f'the checkpoint has weights the model of {config_name} has no place for: '
            + _first_and_count(unexpected, lambda k: f'{match.name(k)} {_shape(tao[k])}')
            + hint,
            where,
        )
    for ours, theirs, have, want in match.mismatched(r'.*'):
        raise InputError(
            f'{match.name(theirs)} has shape {have} in the checkpoint, {ours} of '
            f'{config_name} has {want}',
            where,
        )
    state, shared = {}, {}
    for ours, theirs in sources.items():
        if ours in filled:
            value = expected[ours].detach().clone()
            state[ours] = value.zero_() if ours.endswith(BATCH_NORM_COUNTER) else value
            continue
        value = tao[theirs]
        state[ours] = value.float() if value.is_floating_point() else value
        if theirs != ours:
            shared.setdefault(theirs, []).append(ours)
    shared = {theirs: keys for theirs, keys in shared.items() if len(keys) > 1}
    return Conversion(state, shared, filled)


def _configured_classes(cfg: Config) -> tuple[str, ...]:
    names = cfg.get('class_names')
    if names is None:
        dataset = (cfg.get('train_dataloader') or {}).get('dataset') or {}
        names = (dataset.get('metainfo') or {}).get('classes', ())
    return tuple(names)


def _anchors_from_file(path: Path) -> Tensor:
    if not path.is_file():
        raise InputError('anchor file not found', path)
    try:
        anchors = np.load(path)
    except (OSError, ValueError) as error:
        raise InputError(f'not a .npy array: {error}', path) from None
    return torch.from_numpy(np.asarray(anchors, dtype=np.float32))


def build_target_model(cfg: Config) -> nn.Module:
    """The config's model, uninitialised, without reading its anchor file (the weights come
    from the checkpoint)."""
    from ..registry import MODELS

    cfg = Config(cfg.to_dict())
    bank = cfg.model.head.instance_bank
    placeholder = np.zeros((bank.num_anchor, 11), np.float32)
    placeholder[:, 7] = 1.0
    bank.anchor = placeholder
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmsparse4d')):
        return MODELS.build(cfg.model)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(1 << 24), b''):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class ConversionReport:
    """What ``tao_to_mmsparse4d`` wrote, for the tool's summary."""

    target: Path
    layout: str
    converted: int  # TAO's weights used (all the model's)
    shared: dict[str, list[str]]
    filled: list[str]
    dropped: list[str]
    anchors: str

    def summary(self) -> str:
        counters = sum(k.endswith(BATCH_NORM_COUNTER) for k in self.filled)
        points = len(self.filled) - counters
        shared = ', '.join(f'{k} -> {len(v)} layers' for k, v in self.shared.items()) or 'none'
        return (
            f'{self.target}: {self.converted} weights from a {self.layout}; shared copied: '
            f'{shared}; filled: {points} key point sets from the config, {counters} batch '
            f'norm counters (0); left out: {len(self.dropped)} criterion keys; anchors: '
            f'{self.anchors}'
        )


def tao_to_mmsparse4d(
    source: str | os.PathLike,
    cfg: Config,
    target: str | os.PathLike,
    anchors_file: str | os.PathLike | None = None,
    model: nn.Module | None = None,
) -> ConversionReport:
    """Convert TAO checkpoint ``source`` for ``cfg``'s model and write ``target``.

    The anchors are the checkpoint's ``head.instance_bank.anchor`` (TAO learns them from
    its k-means .npy; its own loader takes the checkpoint's). ``anchors_file`` (that .npy)
    is needed only for a checkpoint without them; given with one that has them, its shape
    is checked and the largest difference reported. The output holds float32 weights and
    a ``meta`` as the training checkpoints' (``cfg`` text, ``dataset_meta`` with the
    classes, versions, time) plus ``tao_conversion`` (source, layout, what was shared,
    filled and left out); ``torch.load(weights_only=True)`` reads it and ``load_from`` or
    ``tools/test.py`` with ``cfg`` take it. Nothing is written unless every check passes.

    Args:
        source: the TAO (or HorizonRobotics) checkpoint.
        cfg: the target config (``cfg.filename`` names it in messages).
        target: the output file.
        anchors_file: the k-means anchors .npy the TAO model was trained from.
        model: ``cfg``'s model if already built (tests), else built here.
    """
    source, target = Path(source), Path(target)
    config_name = Path(cfg.filename).name if cfg.filename else 'the config'
    weights = read_tao_checkpoint(source)
    class_names = _configured_classes(cfg)
    refine = cfg.model.head.refine_layer
    problem = class_count_problem(
        weights, refine.num_cls, refine.get('embed_dims', 256), class_names, config_name
    )
    if problem:
        raise InputError(problem, source)
    if model is None:
        model = build_target_model(cfg)
    anchors_note = "the checkpoint's (learned)"
    file_anchors = _anchors_from_file(Path(anchors_file)) if anchors_file is not None else None
    expected_anchors = _shape(model.state_dict()[ANCHOR_KEY])
    if file_anchors is not None and _shape(file_anchors) != expected_anchors:
        raise InputError(
            f'anchors of shape {_shape(file_anchors)}, {ANCHOR_KEY} of {config_name} has '
            f'{expected_anchors}',
            anchors_file,
        )
    if ANCHOR_KEY not in weights.state:
        if file_anchors is None:
            raise InputError(
                f'the checkpoint holds no {ANCHOR_KEY}: give the k-means anchors it was '
                'trained from with --anchors FILE',
                source,
            )
        weights.state[ANCHOR_KEY] = file_anchors
        anchors_note = f'from {anchors_file}'
    elif file_anchors is not None and _shape(weights.state[ANCHOR_KEY]) == expected_anchors:
        moved = (weights.state[ANCHOR_KEY].float() - file_anchors).abs().max().item()
        anchors_note += f', at most {moved:.3g} from {Path(anchors_file).name}'
    conversion = convert_state_dict(weights, model, config_name, class_names, source)
    meta = dict(
        cfg=cfg.pretty_text,
        dataset_meta=dict(classes=class_names),
        mmengine_version=mmengine.__version__,
        time=time.strftime('%Y%m%d_%H%M%S', time.localtime()),
        tao_conversion=dict(
            source=source.name,
            sha256=_sha256(source),
            layout=weights.layout,
            anchors=anchors_note,
            shared=conversion.shared,
            filled=conversion.filled,
            dropped=weights.dropped,
            **weights.source_meta,
        ),
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f'.{target.name}.tmp')
    torch.save({'state_dict': conversion.state, 'meta': meta}, temporary)
    temporary.replace(target)
    return ConversionReport(
        target,
        weights.layout,
        len(weights.state),
        conversion.shared,
        conversion.filled,
        weights.dropped,
        anchors_note,
    )
