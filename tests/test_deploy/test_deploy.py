"""Export, back ends and the host-side tracker, on the shipped checkpoint and a real
generated 8-camera scene (ONNX Runtime with the project's nv::MSDA library)."""

import numpy as np
import onnx
import pytest
import torch
from mmengine.config import Config

from mmsparse4d.apis import Sparse4DTracker
from mmsparse4d.datasets.aicity import RawScene
from mmsparse4d.datasets.synthetic import write_synthetic_scene
from mmsparse4d.deploy import (
    INPUT_NAMES,
    CudaGraphBackend,
    OnnxRuntimeBackend,
    PyTorchBackend,
    Sparse4DFrameGraph,
    TensorRTBackend,
    example_inputs,
    export_tracking_graph,
    graph_metadata,
    read_onnx_metadata,
)
from mmsparse4d.testing import build_untrained_model, network_reductions, rounding_tolerance
from mmsparse4d.testing.track_comparison import compare_frame, summarise

CONFIG = 'projects/sparse4d/configs/sparse4d_oae_small_480x272_synthetic.py'
CHECKPOINT = 'checkpoints/sparse4d_oae_small_480x272_synthetic-47bb6a98.pth'
REPORTED = 0.2  # the submission threshold of tools/infer.py


def graph_tolerance(model) -> dict[str, float]:
    """ONNX Runtime (MLAS) and PyTorch (MKL, oneDNN, ATen) sum in orders of their own, and
    in other orders on each CPU: a graph's outputs agree up to the rounding of the model's
    reductions, compared with :func:`per_column` (each class, box field and channel on its
    own scale). Measured: within 2e-5 of that scale (AVX-512, AVX2, default ATen kernels);
    the bound is ~6e-4, and a graph that differs in a layer differs by ~1e-1 or more."""
    terms, depth = network_reductions(model)
    return rounding_tolerance(torch.float32, terms, depth=depth)


def per_column(value: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``value`` divided by the magnitude (at least 1) of each column of ``reference``
    along the last axis: a velocity of 100 m/s sets no tolerance for a centre of 5 m."""
    if reference.ndim == 0 or reference.size == 0:
        return value / max(float(np.abs(reference).max(initial=0.0)), 1.0)
    magnitude = np.abs(reference).reshape(-1, reference.shape[-1]).max(axis=0)
    return value / np.maximum(magnitude, 1.0)


def numpy_of(outputs: dict) -> dict[str, np.ndarray]:
    """A back end's outputs (tensors) as numpy arrays."""
    return {name: value.detach().cpu().numpy() for name, value in outputs.items()}


def assert_outputs_close(got: dict, expected: dict, tolerance: dict[str, float]) -> None:
    got, expected = numpy_of(got), numpy_of(expected)
    assert set(got) == set(expected)
    for name, value in expected.items():
        if not np.issubdtype(value.dtype, np.floating):
            np.testing.assert_array_equal(got[name], value, err_msg=name)
            continue
        np.testing.assert_allclose(
            per_column(got[name], value), per_column(value, value), **tolerance, err_msg=name
        )


@pytest.fixture(scope='module')
def exported(repo_root, tmp_path_factory):
    cfg = Config.fromfile(str(repo_root / CONFIG))
    native = Sparse4DTracker(cfg, repo_root / CHECKPOINT)
    path = tmp_path_factory.mktemp('deploy') / 'oae_small.onnx'
    export_tracking_graph(native.model, cfg, path)
    return cfg, native, path


@pytest.fixture(scope='module')
def eight_camera_scene(tmp_path_factory):
    path = tmp_path_factory.mktemp('deploy_scene') / 'Warehouse_800'
    write_synthetic_scene(
        path,
        seed=800,
        num_cameras=8,
        num_objects=12,
        num_frames=50,
        width=480,
        height=270,
        workers=1,
    )
    return RawScene(path)


def test_export_follows_the_model_card(exported):
    cfg, native, path = exported
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert max(o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')) == 17
    msda = [n for n in model.graph.node if (n.domain, n.op_type) == ('nv', 'MSDA')]
    assert len(msda) == native.model.head.num_decoder == 4
    assert all(not n.attribute and len(n.input) == 5 for n in msda)
    inputs = {i.name: i.type.tensor_type.shape.dim for i in model.graph.input}
    # The shipped model's velocity is in m/s: the interval pair is not read, nor exported.
    assert list(inputs) == list(INPUT_NAMES[:6]) == read_onnx_metadata(path)['input_names']
    assert [d.dim_param for d in inputs['img'][:2]] == ['batch', 'num_cams']
    assert [d.dim_value for d in inputs['input_cached_feature'][1:]] == [200, 96]
    outputs = [o.name for o in model.graph.output]
    assert outputs[:4] == [f'classification{i}' for i in range(1, 5)]
    assert {'prediction4', 'quality4', 'output_cached_feature', 'reid_feats'} <= set(outputs)
    meta = read_onnx_metadata(path)
    assert meta['image_size'] == [272, 480] and meta['max_num_cams'] == 20
    assert meta == dict(graph_metadata(native.model, cfg), output_names=outputs)


def test_a_model_with_new_query_exclusion_exports_the_cache_confidences(repo_root, tmp_path):
    # The exclusion reads the carried confidences: the graph takes them as a ninth input and
    # ONNX Runtime merges the same queries as PyTorch.
    cfg = Config.fromfile(str(repo_root / CONFIG))
    cfg.merge_from_dict(
        {
            'model.img_backbone.init_cfg': None,
            'model.head.instance_bank.new_query_exclusion': dict(radius=1.0, min_confidence=0.5),
        }
    )
    model = build_untrained_model(cfg).eval()
    path = tmp_path / 'exclusion.onnx'
    export_tracking_graph(model, cfg, path)
    backend = OnnxRuntimeBackend(path, providers=['CPUExecutionProvider'])
    assert backend.input_names[-1] == 'input_cached_confidence'
    feeds = example_inputs(backend.metadata, num_cams=2)
    feeds['prev_exists'][:] = 1
    # The cached anchors on the first queries' anchors: those queries are covered.
    feeds['input_cached_anchor'][:] = model.head.instance_bank.anchor.detach().numpy()[
        : feeds['input_cached_anchor'].shape[1]
    ]
    results = {}
    for confidence in (1.0, 0.0):
        feeds['input_cached_confidence'][:] = confidence
        expected = PyTorchBackend(model, backend.metadata)(feeds)['prediction4']
        got = backend(feeds)['prediction4']
        assert_outputs_close(
            {'prediction4': torch.as_tensor(got)},
            {'prediction4': torch.as_tensor(expected)},
            graph_tolerance(model),
        )
        results[confidence] = np.asarray(got)
    assert not np.allclose(results[1.0], results[0.0])


def test_a_model_reading_the_interval_exports_it(repo_root, tmp_path):
    # Upstream's refinement divides its velocity output by the interval: the graph keeps the
    # model card's eight inputs, and ONNX Runtime answers to a changed interval as PyTorch.
    options = {
        'model.img_backbone.init_cfg': None,
        'model.head.refine_layer.velocity_per_second': False,
    }
    cfg = Config.fromfile(str(repo_root / CONFIG))
    cfg.merge_from_dict(options)
    model = build_untrained_model(cfg).eval()
    path = tmp_path / 'interval.onnx'
    export_tracking_graph(model, cfg, path)
    eight = [name for name in INPUT_NAMES if name != 'input_cached_confidence']
    assert [i.name for i in onnx.load(str(path)).graph.input] == eight
    backend = OnnxRuntimeBackend(path, providers=['CPUExecutionProvider'])
    assert backend.input_names == eight == backend.metadata['input_names']
    feeds = example_inputs(backend.metadata, num_cams=2)
    feeds['prev_exists'][:] = 1
    feeds['interval_mask'][:] = True
    tolerance = graph_tolerance(model)
    predictions = []
    for interval in (1 / 30, 0.2):
        feeds['time_interval'][:] = interval
        expected = PyTorchBackend(model, backend.metadata)(feeds)['prediction4']
        predictions.append(backend(feeds)['prediction4'])
        expected, predictions[-1] = expected.numpy(), predictions[-1].numpy()
        assert_outputs_close(
            {'prediction4': torch.from_numpy(predictions[-1])},
            {'prediction4': torch.from_numpy(expected)},
            tolerance,
        )
    # The interval reached the refinement: boxes move by 5% to 500% of their scale.
    first, second = (per_column(p, predictions[1]) for p in predictions)
    assert not np.allclose(first, second, **tolerance)


@pytest.mark.parametrize('cams', [1, 4, 8, 20])
def test_onnxruntime_equals_pytorch_for_any_camera_count(exported, cams):
    _, native, path = exported
    backend = OnnxRuntimeBackend(path, providers=['CPUExecutionProvider'])
    feeds = example_inputs(backend.metadata, num_cams=cams)
    expected = PyTorchBackend(native.model, backend.metadata)(feeds)
    assert_outputs_close(backend(feeds), expected, graph_tolerance(native.model))


def _run(trackers, scene, cams, frames):
    intrinsics = np.stack([scene.calibration[c].intrinsic for c in cams])
    world_to_camera = np.stack([scene.calibration[c].world_to_camera for c in cams])
    results = [[] for _ in trackers]
    for frame in range(frames):
        images = [scene.rgb(c, frame) for c in cams]
        for tracker, out in zip(trackers, results, strict=True):
            out.append(
                tracker(
                    images,
                    intrinsics,
                    world_to_camera,
                    frame / scene.fps,
                    scene.name,
                    frame_idx=frame,
                )
            )
    return results


def test_host_runner_with_pytorch_equals_the_model(exported, eight_camera_scene):
    # The host keeps the bank's state with the model's own InstanceBank code: with the
    # PyTorch back end the tracks are those of Sparse4DTracker, bit for bit.
    cfg, native, _ = exported
    native.reset()
    deployed = Sparse4DTracker(
        cfg, backend=PyTorchBackend(native.model, graph_metadata(native.model, cfg))
    )
    model_results, host_results = _run(
        [native, deployed], eight_camera_scene, eight_camera_scene.cameras[:4], 20
    )
    for a, b in zip(model_results, host_results, strict=True):
        assert np.array_equal(a['track_ids'], b['track_ids'])
        assert np.array_equal(a['bboxes_3d'], b['bboxes_3d'])
        assert np.array_equal(a['scores_3d'], b['scores_3d'])


def test_cuda_graph_backend_steps_equal_pytorch(exported, eight_camera_scene):
    # Without a capture (CPU) the back end runs the same graph on its static buffers: the
    # tracks are PyTorchBackend's bit for bit; the capture itself is compared on a GPU below.
    cfg, native, _ = exported
    metadata = graph_metadata(native.model, cfg)
    reference = Sparse4DTracker(cfg, backend=PyTorchBackend(native.model, metadata))
    buffered = Sparse4DTracker(
        cfg, backend=CudaGraphBackend(native.model, metadata, 'cpu', capture=False)
    )
    a, b = _run([reference, buffered], eight_camera_scene, eight_camera_scene.cameras[:4], 10)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x['track_ids'], y['track_ids'])
        assert np.array_equal(x['bboxes_3d'], y['bboxes_3d'])
    assert buffered.backend.frame.num_graphs == 1


SCORE_MARGIN = 0.05

# Runtimes are compared without the decoder's host post-processing (duplicate suppression,
# track stitching, yaw from motion): it is the same host code on both sides, and its yes/no
# decisions (a radius, a score threshold, a distance moved) turn a closed loop's 1e-3 drift
# into an occasional different id or yaw; what is compared is the graph under a closed loop.
WITHOUT_HOST_POST_PROCESSING = dict(
    duplicate_radius=None, track_stitching=None, motion_heading=None
)


@pytest.mark.gpu
def test_cuda_graph_tracks_equal_pytorch_on_a_gpu(repo_root, eight_camera_scene):
    cfg = Config.fromfile(str(repo_root / CONFIG))
    cfg.model.head.decoder.update(WITHOUT_HOST_POST_PROCESSING)
    native = Sparse4DTracker(cfg, repo_root / CHECKPOINT, 'cuda')
    metadata = graph_metadata(native.model, cfg)
    reference = Sparse4DTracker(cfg, backend=PyTorchBackend(native.model, metadata, 'cuda'))
    graphed = Sparse4DTracker(cfg, backend=CudaGraphBackend(native.model, metadata, 'cuda'))
    cams = eight_camera_scene.cameras[:4]
    torch_results, graph_results = _run([reference, graphed], eight_camera_scene, cams, 30)
    summary = summarise(
        [compare_frame(a, b, REPORTED) for a, b in zip(graph_results, torch_results, strict=True)]
    )
    assert sum(len(r['track_ids']) for r in torch_results) > 30
    assert summary['frames_with_other_ids'] == 0, summary
    assert summary['box_error'] < 1e-3, summary
    assert graphed.backend.frame.num_graphs == 1
    # Half precision in the closed loop: the queries in the cache may differ (a top-k of
    # near-equal scores), so the reported boxes are matched by position, not by slot or id;
    # and a box whose score sits at the reporting threshold may fall on either side of it, so
    # the fp32 boxes clearly above it (by SCORE_MARGIN) look for a half-precision box
    # anywhere above threshold - SCORE_MARGIN. (The checkpoint -e0f50b4a without the margin:
    # 704 of 785 boxes, 89.7%; with it 596 of 639, 93.3%, on the H100.)
    half = Sparse4DTracker(cfg, backend=CudaGraphBackend(native.model, metadata, 'cuda', 'fp16'))
    (half_results,) = _run([half], eight_camera_scene, cams, 30)
    matched = total = 0
    for a, b in zip(torch_results, half_results, strict=True):
        ref = a['bboxes_3d'][a['scores_3d'] >= REPORTED + SCORE_MARGIN, :3]
        got = b['bboxes_3d'][b['scores_3d'] >= REPORTED - SCORE_MARGIN, :3]
        if len(ref) and len(got):
            distance = np.linalg.norm(ref[:, None] - got[None], axis=-1).min(axis=1)
            matched += int((distance < 0.1).sum())
        total += len(ref)
    print(f'fp16 CUDA graph: {matched} of {total} fp32 boxes have one within 0.1 m')
    assert matched >= 0.9 * total


class TeacherForced:
    """Runs a second back end on exactly the feeds the reference back end got and records
    each frame's largest output difference (relative to each column's magnitude, as
    :func:`per_column`): the runtimes compared frame by frame, without the closed loop's
    accumulation."""

    def __init__(self, reference, other):
        self.reference, self.other = reference, other
        self.metadata = reference.metadata
        self.device, self.normalises = reference.device, reference.normalises
        self.frames = []

    def __call__(self, feeds):
        expected = self.reference(feeds)
        reference, got = numpy_of(expected), numpy_of(self.other(feeds))
        differences = (np.abs(per_column(got[k] - v, v)).max() for k, v in reference.items())
        self.frames.append(max(map(float, differences)))
        return expected


# Closed loop, reported tracks (largest box and score difference, frames whose reported ids
# differ). Frame by frame (teacher forced) the runtimes agree within graph_tolerance
# (measured: up to 5e-5 of each column's scale, ATen's AVX-512, AVX2 and default kernels),
# but for frames where a key point projects within rounding of an image border: the op and
# the per-camera sampler take only points strictly inside, so one runtime samples it and the
# other does not. With ~1e4 projections per frame (300 queries, 17 points, 8 cameras, a
# quarter inside) and a rounding of ~1e-7 of the image size deciding at 4 borders, that is
# about one frame in 250 (measured: one of 300, at 8 cameras, visibility 0.07 apart).
# BORDER_FLIP_FRAMES allows for two in 50 (a chance of ~1e-3 to see three); a runtime that
# computed a layer differently would differ on every frame.
# In the closed loop the cache carries those differences on, and where two queries are
# within them of each other at the edge of the carried set (a rank, the 0.2 threshold) one
# discrete decision differs and the loop follows it. Measured with the shipped checkpoint
# (-e0f50b4a), 4 cameras: below 2e-4 m and the same ids up to frame 28; at frame 29 one such
# flip moves boxes by 9 mm, after which the two loops drift apart (58 mm, scores 0.066, other
# ids in 7 of the last 11 frames). 8 cameras: below 1e-3 m, ids identical. So the first
# frames are held to the graph's precision, the whole run only to staying on the same
# objects (the checkpoint before flipped at frame 24 instead). The 12-layout -47bb6a98 flips
# nothing: 4 and 8 cameras stay below 5e-5 m with the same ids on all 50 frames.
BORDER_FLIP_FRAMES = 2
CLOSED_LOOP_EXACT_FRAMES = 25
CLOSED_LOOP_TOLERANCE = {4: (0.1, 8), 8: (1e-3, 0)}


@pytest.mark.parametrize('num_cams', [4, 8])
def test_onnxruntime_tracks_equal_pytorch_over_50_frames(exported, eight_camera_scene, num_cams):
    cfg, native, path = exported
    metadata = graph_metadata(native.model, cfg)
    ort = OnnxRuntimeBackend(path, providers=['CPUExecutionProvider'])
    forced = TeacherForced(PyTorchBackend(native.model, metadata), ort)
    plain = Config(cfg.to_dict())
    plain.model.head.decoder.update(WITHOUT_HOST_POST_PROCESSING)
    reference = Sparse4DTracker(plain, backend=forced)
    deployed = Sparse4DTracker(plain, backend=ort)
    cams = eight_camera_scene.cameras[:num_cams]
    torch_results, ort_results = _run([reference, deployed], eight_camera_scene, cams, 50)
    pairs = zip(ort_results, torch_results, strict=True)
    frames = [compare_frame(a, b, REPORTED) for a, b in pairs]
    summary = summarise(frames)
    assert sum(len(r['track_ids']) for r in torch_results) > 50  # tracks were reported
    before_any_flip = summarise(frames[:CLOSED_LOOP_EXACT_FRAMES])
    assert before_any_flip['frames_with_other_ids'] == 0, before_any_flip
    assert before_any_flip['box_error'] < 1e-3, before_any_flip
    assert before_any_flip['score_error'] < 1e-3, before_any_flip
    tolerance, other_ids = CLOSED_LOOP_TOLERANCE[num_cams]
    assert summary['frames_with_other_ids'] <= other_ids, summary
    assert summary['label_mismatches'] == 0, summary
    assert summary['box_error'] < tolerance, summary
    assert summary['score_error'] < tolerance, summary
    bound = graph_tolerance(native.model)['atol']
    assert sum(worst > bound for worst in forced.frames) <= BORDER_FLIP_FRAMES, forced.frames


def test_bad_input_is_refused_before_inference(exported, eight_camera_scene):
    cfg, _, path = exported
    tracker = Sparse4DTracker(cfg, backend=OnnxRuntimeBackend(path))
    scene = eight_camera_scene
    image = scene.rgb(scene.cameras[0], 0)
    k = scene.calibration[scene.cameras[0]].intrinsic
    e = scene.calibration[scene.cameras[0]].world_to_camera
    with pytest.raises(ValueError, match='21 cameras, the model takes at most 20'):
        tracker([image] * 21, np.stack([k] * 21), np.stack([e] * 21), 0.0)
    bad = e.copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match='non-finite calibration'):
        tracker([image], k[None], bad[None], 0.0)
    with pytest.raises(ValueError, match='must be uint8'):
        tracker([image.astype(np.float32)], k[None], e[None], 0.0)
    # A config whose pipeline makes another image size than the exported graph's.
    other = Config.fromfile(cfg.filename)
    other.test_dataloader.dataset.pipeline[1]['final_size'] = (320, 192)
    with pytest.raises(ValueError, match=r'exported for \[272, 480\]'):
        Sparse4DTracker(other, backend=OnnxRuntimeBackend(path))([image], k[None], e[None], 0.0)
    assert tracker.frame == 0  # nothing ran


def test_unsupported_settings_and_missing_runtimes_say_so(exported, tmp_path):
    _, native, path = exported
    bank = native.model.head.instance_bank
    saved = bank.num_temp_instances
    bank.num_temp_instances = 0
    try:
        with pytest.raises(ValueError, match='carries no instances'):
            Sparse4DFrameGraph(native.model)
    finally:
        bank.num_temp_instances = saved
    plain = tmp_path / 'plain.onnx'
    onnx.save(onnx.helper.make_model(onnx.helper.make_graph([], 'g', [], [])), str(plain))
    with pytest.raises(ValueError, match='no .mmsparse4d. metadata'):
        read_onnx_metadata(plain)
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match='tensorrt Python package is not installed'):
            TensorRTBackend(tmp_path / 'x.engine', tmp_path / 'x.so')


def test_export_and_infer_tools_on_onnxruntime(repo_root, exported, eight_camera_scene, tmp_path):
    import sys

    sys.path.insert(0, str(repo_root / 'tools'))
    import export as export_tool
    import infer as infer_tool

    onnx_path = tmp_path / 'model.onnx'
    export_tool.main(
        [
            str(repo_root / CONFIG),
            str(repo_root / CHECKPOINT),
            '--out',
            str(onnx_path),
            '--verify-cams',
            '3',
        ]
    )
    common = [
        str(eight_camera_scene.root),
        '--frames',
        '6',
        '--cameras',
        *eight_camera_scene.cameras[:4],
    ]
    ort = infer_tool.infer(
        infer_tool.parse_args(
            [
                str(repo_root / CONFIG),
                str(onnx_path),
                *common,
                '--backend',
                'onnxruntime',
                '--out-dir',
                str(tmp_path / 'ort'),
            ]
        )
    )
    pt = infer_tool.infer(
        infer_tool.parse_args(
            [
                str(repo_root / CONFIG),
                str(repo_root / CHECKPOINT),
                *common,
                '--out-dir',
                str(tmp_path / 'pt'),
            ]
        )
    )
    rows_ort = np.loadtxt(ort['submission'], ndmin=2)
    rows_pt = np.loadtxt(pt['submission'], ndmin=2)
    assert rows_ort.shape == rows_pt.shape and len(rows_pt) > 0
    np.testing.assert_array_equal(rows_ort[:, :4], rows_pt[:, :4])  # scene, class, id, frame
    np.testing.assert_allclose(rows_ort[:, 4:], rows_pt[:, 4:], atol=1e-3)
    with pytest.raises(ValueError, match='takes a .onnx file'):
        infer_tool.build_tracker(
            Config.fromfile(str(repo_root / CONFIG)),
            infer_tool.parse_args(
                [
                    str(repo_root / CONFIG),
                    str(repo_root / CHECKPOINT),
                    *common,
                    '--backend',
                    'onnxruntime',
                    '--out-dir',
                    str(tmp_path / 'x'),
                ]
            ),
        )
    assert read_onnx_metadata(onnx_path)['num_decoder'] == 4
    cfg = Config.fromfile(str(repo_root / CONFIG))
    base = [
        str(repo_root / CONFIG),
        str(repo_root / CHECKPOINT),
        *common,
        '--out-dir',
        str(tmp_path / 'x'),
    ]
    with pytest.raises(ValueError, match='--precision fp16 is for --backend cudagraph'):
        infer_tool.build_tracker(cfg, infer_tool.parse_args([*base, '--precision', 'fp16']))
    with pytest.raises(ValueError, match='cudagraph needs --device cuda'):
        infer_tool.build_tracker(cfg, infer_tool.parse_args([*base, '--backend', 'cudagraph']))
    # A threshold under the stitching's min_score would leave boxes without a track id: refused
    # before any frame runs (nothing written), and allowed once min_score follows it.
    with pytest.raises(ValueError, match='below the track stitching'):
        infer_tool.infer(infer_tool.parse_args([*base, '--score-threshold', '0.1']))
    assert not (tmp_path / 'x').exists()
    low = infer_tool.infer(
        infer_tool.parse_args(
            [
                *base,
                '--frames',
                '2',
                '--score-threshold',
                '0.1',
                '--cfg-options',
                'model.head.decoder.track_stitching.min_score=0.1',
            ]
        )
    )
    assert np.loadtxt(low['submission'], ndmin=2)[:, 2].min() >= 1  # every row has a track
    # Tracks continued below min_score (the stitching's continue_score) are written with their
    # ids; a continue_score at or above min_score is refused in one line, before any frame.
    continuing = '+model.head.decoder.track_stitching.continue_score'
    with pytest.raises(ValueError, match='track_stitching: .*continue_score must lie'):
        refused = [*base[:-1], str(tmp_path / 'refused'), '--cfg-options', f'{continuing}=0.5']
        infer_tool.infer(infer_tool.parse_args(refused))
    assert not (tmp_path / 'refused').exists()
    continued = infer_tool.infer(
        infer_tool.parse_args(
            [
                *base[:-1],
                str(tmp_path / 'continued'),
                '--frames',
                '2',
                '--cfg-options',
                f'{continuing}=0.0',
            ]
        )
    )
    assert np.loadtxt(continued['submission'], ndmin=2)[:, 2].min() >= 1
    with np.load(continued['tracks']) as tracks:
        for frame in range(int(tracks['frames'])):
            weak = tracks[f'{frame}/scores_3d'] < 0.2
            assert (tracks[f'{frame}/track_ids'][weak] >= 1).all()
