"""Generate the TAO parity fixture: NVIDIA TAO's own Sparse4D head run on fixed random data.

What it does
    1. Imports NVIDIA TAO's Sparse4D model code from a checkout of tao_pytorch_backend
       (``TAO_SRC``, the directory that contains ``nvidia_tao_pytorch``). Nothing of TAO is
       copied: the code runs from ``TAO_SRC``. Imports that only log, or that belong to the
       training / Lightning / packaging machinery, are answered by small stubs that this script
       writes into a temporary directory placed first on ``sys.path``
       (``tao_parity/overlay.py``).
       No stub touches the maths. TAO's compiled deformable-aggregation extension is not built:
       the model is configured with ``use_deformable_func=False``, so TAO's DFA takes its
       ``grid_sample`` path (``feature_sampling`` + ``multi_view_level_fusion``); the extension
       module is a stub that raises if it is ever called.
    2. Builds TAO's ``Sparse4DHead`` (instance bank, anchor encoder, DFA with camera embedding,
       decoupled attention, temporal attention, FFN, refinement, decoder) at a small size, runs
       TAO's init, then replaces every parameter with random values of a sensible scale that are
       float16-representable (so the float16 copy in the fixture is exactly what the float32
       model used). The large matrices are windows of one shared random float16 pool (see
       ``tao_parity/inputs.py``) to keep the file small; every key still has its own values.
    3. Runs the head in eval mode frame by frame as TAO's inference does
       (``Sparse4D.simple_test``: ``head(feature_maps, metas)`` then ``head.post_process``) on
       six frames of 3 cameras: five consecutive frames at 1/30 s, then one after a 3 s gap
       (more than the bank's 2 s ``max_time_interval``).
    4. Writes ``OUT_DIR/fixture.pt`` (loadable with ``torch.load(..., weights_only=True)``),
       ``OUT_DIR/meta.json`` and ``OUT_DIR/tao_keys.json`` (every state_dict key and shape of
       TAO's full model as a TAO Lightning checkpoint names them, for ResNet-101 / ResNet-50 and
       use_camera_embed false / true; no values).

How to run
    git -C tao_pytorch_backend archive HEAD nvidia_tao_pytorch/core \\
        nvidia_tao_pytorch/cv/sparse4d nvidia_tao_pytorch/cv/backbone_v2 | tar -x -C /tmp/tao
    PYTHONPATH=/tmp/tao_gen_deps python tools/dev/make_tao_parity_fixture.py /tmp/tao \\
        tests/data/tao_parity --commit <sha>

    ``--commit`` records the TAO commit in meta.json; without it the script asks git when
    TAO_SRC is inside a git work tree. ``--seed`` (default ``DEFAULT_SEED``) changes every
    random draw. The data is rejected (exit 1) unless every frame has boxes, ids are carried
    between the consecutive frames and every discrete choice is at least ``--min-margin``
    from flipping (``tao_parity/checks.py``). ``--no-keys`` skips tao_keys.json (then timm is
    not needed). The output is byte-identical from run to run on one machine.

Environment
    * torch (CPU is enough) and numpy: the project venv.
    * The key listing builds TAO's timm-based ResNet, so it needs ``timm`` on the path. Install
      it outside the project venv, e.g.
      ``pip download --no-deps timm && pip install --no-deps --target /tmp/tao_gen_deps timm-*.whl``
      and pass that directory via PYTHONPATH. timm imports a few names from torchvision; if
      ``import torchvision`` fails (not installed, or its compiled part does not match torch),
      the script writes a stub torchvision that provides those names (only names and shapes
      are recorded by the key listing, so no torchvision maths is needed).
    * Not needed: CUDA, the TAO CUDA extension, pytorch_lightning, hydra, omegaconf, fvcore,
      tao-core (the config is plain dicts with the TAO spec's values,
      ``tao_parity/tao_config.py``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from tao_parity.checks import decision_margins, float64_reference, summarise
from tao_parity.full_keys import tao_full_keys
from tao_parity.inputs import (
    level_shapes,
    make_anchors,
    make_cameras,
    make_features,
    random_state_dict,
)
from tao_parity.overlay import torchvision_importable, write_overlay
from tao_parity.run_head import run_head
from tao_parity.settings import (
    BIG_NUMEL,
    CLASSES,
    CLS_BIAS,
    CRITERION_PREFIX,
    DEFAULT_SEED,
    EMBED_DIMS,
    FIXTURE_LAYOUT,
    FPS,
    FRAME_IDS,
    IMAGE_WH,
    MAX_NUM_CAMS,
    MIN_MARGIN,
    NUM_ANCHOR,
    NUM_CAMS,
    NUM_DECODER,
    NUM_OUTPUT,
    NUM_SINGLE_FRAME_DECODER,
    NUM_TEMP_INSTANCES,
    POOL_SIZE,
    POOL_STD,
    REFINE_SCALE,
    STATE_DICT_PREFIX,
    STRIDES,
)
from tao_parity.tao_config import tao_config


def git_commit(path: Path) -> str | None:
    try:
        out = subprocess.run(
            ['git', '-C', str(path), 'rev-parse', 'HEAD'], capture_output=True, text=True
        )
    except OSError:
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('tao_src', type=Path, help='directory containing nvidia_tao_pytorch')
    ap.add_argument('out_dir', type=Path)
    ap.add_argument('--seed', type=int, default=DEFAULT_SEED)
    ap.add_argument('--commit', help='TAO source commit (default: git rev-parse in TAO_SRC)')
    ap.add_argument('--no-keys', action='store_true', help='skip tao_keys.json (no timm)')
    ap.add_argument(
        '--min-margin',
        type=float,
        default=MIN_MARGIN,
        help='reject the data if a discrete choice is closer than this to flipping',
    )
    args = ap.parse_args(argv)

    tao_src = args.tao_src.resolve()
    if not (tao_src / 'nvidia_tao_pytorch/cv/sparse4d/model/sparse4d_head.py').exists():
        ap.error(f'{tao_src} does not contain nvidia_tao_pytorch/cv/sparse4d')
    commit = args.commit or git_commit(tao_src)
    args.out_dir.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix='tao_parity_') as tmp_name:
        tmp = Path(tmp_name)
        stub_tv = not args.no_keys and not torchvision_importable()
        stubs = write_overlay(tmp / 'overlay', tao_src, stub_tv)
        sys.path.insert(0, str(tmp / 'overlay'))

        seed = args.seed
        gen = torch.Generator().manual_seed(seed)
        rng = np.random.RandomState(seed)
        proj = make_cameras(rng)
        anchors = make_anchors(rng)
        features = make_features(gen, len(FRAME_IDS))

        cfg = tao_config(
            anchor=anchors.astype(np.float32).tolist(),
            num_anchor=NUM_ANCHOR,
            num_temp_instances=NUM_TEMP_INSTANCES,
            num_decoder=NUM_DECODER,
            num_single_frame_decoder=NUM_SINGLE_FRAME_DECODER,
            num_output=NUM_OUTPUT,
            max_num_cams=MAX_NUM_CAMS,
            use_camera_embed=True,
            use_deformable_func=False,
        )
        head_mod = importlib.import_module('nvidia_tao_pytorch.cv.sparse4d.model.sparse4d_head')
        torch.manual_seed(seed)
        head0 = head_mod.build_head(cfg)
        sd16 = random_state_dict(head0, anchors, gen)
        del head0

        inputs = []
        for t, fid in enumerate(FRAME_IDS):
            inputs.append(
                {
                    'feature_maps': features[t],
                    'projection_mat': torch.from_numpy(proj)[None].clone(),
                    'image_wh': torch.tensor([IMAGE_WH] * NUM_CAMS, dtype=torch.float32)[None],
                    'timestamp': torch.tensor([fid / FPS], dtype=torch.float64),
                    'frame_id': fid,
                }
            )
        head, outputs = run_head(cfg, sd16, inputs, seed)
        summary = summarise(outputs)
        n_boxes = [r['boxes'] for r in summary]
        carried = [len(r['ids_also_in_previous_frame']) for r in summary[1:5]]
        _, outputs64 = run_head(cfg, sd16, inputs, seed, dtype=torch.float64)
        reference64, deviation = float64_reference(outputs, outputs64)
        margins = decision_margins(outputs, cfg['model']['head']['decoder']['score_threshold'])
        for row, m, d in zip(summary, margins, deviation, strict=True):
            row['decision_margins'] = m
            row['float32_vs_float64'] = d
        # The output order is not a choice a parity test needs (ids are unique per frame and
        # match the boxes); its margin is recorded, not required.
        min_margin = min(
            v for m in margins for k, v in m.items() if v is not None and k != 'score_order'
        )
        problems = []
        if min(n_boxes) == 0 or min(carried) == 0:
            problems.append('a frame without boxes or without carried ids')
        if not all(d['same_choices'] for d in deviation):
            problems.append('the float64 run makes other discrete choices than the float32 run')
        if min_margin < args.min_margin:
            problems.append(f'a decision margin {min_margin:.2e} below --min-margin')
        if problems:
            print(json.dumps(summary, indent=1), file=sys.stderr)
            print(f'fixture rejected (seed {args.seed}): ' + '; '.join(problems), file=sys.stderr)
            return 1

        state_dict = {STATE_DICT_PREFIX + k: v for k, v in sd16.items()}
        for k in ('anchor', 'instance_feature'):
            state_dict[f'{CRITERION_PREFIX}instance_bank.{k}'] = sd16[f'instance_bank.{k}']
        head_cfg = json.loads(json.dumps(cfg))
        fixture = {
            'format': 'tao_parity_fixture/1',
            'tao_commit': commit or 'unknown',
            'config': head_cfg,
            'state_dict': state_dict,
            'inputs': inputs,
            'outputs': outputs,
            'outputs_float64': reference64,
        }
        torch.save(fixture, args.out_dir / 'fixture.pt')
        # The file must load with weights_only=True.
        torch.load(args.out_dir / 'fixture.pt', weights_only=True)

        keys = None
        if not args.no_keys:
            keys = tao_full_keys(tmp)
            with open(args.out_dir / 'tao_keys.json', 'w') as f:
                json.dump({'tao_commit': commit or 'unknown', **keys}, f, separators=(',', ':'))

        timm_version = None
        if 'timm' in sys.modules:
            timm_version = sys.modules['timm'].__version__
        meta = {
            'about': 'TAO parity fixture: NVIDIA TAO Sparse4D head outputs on fixed random data',
            'generator': 'tools/dev/make_tao_parity_fixture.py',
            'tao_repo': 'NVIDIA/tao_pytorch_backend',
            'tao_commit': commit or 'unknown',
            'tao_paths': [
                'nvidia_tao_pytorch/cv/sparse4d/model/sparse4d_head.py',
                'nvidia_tao_pytorch/cv/sparse4d/model/blocks.py',
                'nvidia_tao_pytorch/cv/sparse4d/model/instance_bank.py',
                'nvidia_tao_pytorch/cv/sparse4d/model/detection3d/detection3d_blocks.py',
                'nvidia_tao_pytorch/cv/sparse4d/model/detection3d/decoder.py',
            ],
            'op_path': (
                'grid_sample: use_deformable_func=False (model and DFA), so TAO DFA runs '
                'feature_sampling (F.grid_sample, align_corners=False, zero padding) + '
                'multi_view_level_fusion; the CUDA extension is not built'
            ),
            'stubs': stubs,
            'seed': args.seed,
            'min_decision_margin': min_margin,
            'torch': torch.__version__,
            'numpy': np.__version__,
            'python': platform.python_version(),
            'timm_for_keys': timm_version,
            'torchvision_for_keys': 'stub' if stub_tv else 'real or not needed',
            'state_dict': {
                'prefix': STATE_DICT_PREFIX,
                'dtype': 'float16 (values exactly representable; load as float32)',
                'num_keys': len(state_dict),
                'shared_storage': (
                    f'matrices with >= {BIG_NUMEL} values are windows of one float16 pool '
                    f'({POOL_SIZE} values, std {POOL_STD}); the feature maps of the frames are '
                    'windows of another pool. Values differ per key; clone before writing in '
                    'place.'
                ),
                'criterion_duplicates': [
                    f'{CRITERION_PREFIX}instance_bank.anchor',
                    f'{CRITERION_PREFIX}instance_bank.instance_feature',
                ],
            },
            'scene': {
                'image_wh': list(IMAGE_WH),
                'strides': list(STRIDES),
                'level_shapes_hw': [list(s) for s in level_shapes()],
                'num_cams': NUM_CAMS,
                'frame_ids': list(FRAME_IDS),
                'fps': FPS,
                'timestamps': [fid / FPS for fid in FRAME_IDS],
                'note': 'frames 0-4 consecutive at 1/30 s; frame 5 after a gap > 2 s '
                '(bank mask False)',
            },
            'shapes': {
                'feature_maps': [[1, NUM_CAMS, EMBED_DIMS, h, w] for h, w in level_shapes()],
                'projection_mat': [1, NUM_CAMS, 4, 4],
                'image_wh': [1, NUM_CAMS, 2],
                'timestamp': [1],
                'anchor': [NUM_ANCHOR, 11],
                'classification': [1, NUM_ANCHOR, len(CLASSES)],
                'prediction': [1, NUM_ANCHOR, 11],
                'quality': [1, NUM_ANCHOR, 2],
                'cached_feature': [1, NUM_TEMP_INSTANCES, EMBED_DIMS],
                'key_points': [1, NUM_ANCHOR, 13, 3],
            },
            'weights': {
                'pool_std': POOL_STD,
                'cls_bias': CLS_BIAS,
                'refine_scale': list(REFINE_SCALE),
                'instance_feature_std': 0.5,
            },
            'reid': 'use_reid_sampling false, reid_dims 0 (TAO spec default): no visibility_net, '
            'no bnneck, no reid_feature output',
            'fixture_layout': FIXTURE_LAYOUT,
            'config': head_cfg,
            'frames': summary,
        }
        with open(args.out_dir / 'meta.json', 'w') as f:
            json.dump(meta, f, indent=1)
        for r in summary:
            print(
                f'frame {r["frame"]}: {r["boxes"]} boxes, ids {r["instance_ids"]}, '
                f'carried {r["ids_also_in_previous_frame"]}, dt {r["time_interval"]:.6f}, '
                f'mask {r["mask"]}'
            )
    return 0


if __name__ == '__main__':
    sys.exit(main())
