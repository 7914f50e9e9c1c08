"""tools/benchmark.py (CPU smoke mode) and its measuring helpers."""

import copy
import json
import subprocess
import sys

import pytest
import torch

from mmsparse4d.deploy.frame_benchmark import (
    FrameTimes,
    benchmark_graph_frames,
    max_cameras,
    prepare_model,
    stage_names,
)
from mmsparse4d.testing import build_untrained_model, random_batch
from mmsparse4d.utils.input_error import InputError
from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / 'tools'))
import benchmark as benchmark_tool  # noqa: E402

TINY = REPO_ROOT / 'configs/sparse4d/sparse4d_tiny_synthetic.py'


def test_cpu_smoke_run_reports_every_stage(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    report = benchmark_tool.main(
        [
            str(TINY),
            '--cams',
            '1',
            '2',
            '--frames',
            '2',
            '--warmup',
            '1',
            '--fold-bn',
            '--json',
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert '| precision | 30 FPS | 15 FPS | 10 FPS |' in printed
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    stages = report['runs']['fp32/2']['stages_ms']
    for name in (
        'preprocess',
        'backbone',
        'neck',
        'anchor encoding',
        'instance bank',
        'decoder0 aggregation',
        'decoder1 temporal attention',
        'decoder1 ffn',
        'post-processing',
    ):
        assert stages[name] > 0, name
    assert sum(stages.values()) <= report['runs']['fp32/2']['median_ms'] * 1.5
    assert set(report['max_cameras']) == {'fp32/30', 'fp32/15', 'fp32/10'}


def test_graph_mode_runs_the_deploy_steps_without_a_capture_on_cpu():
    model = prepare_model(build_untrained_model(TINY))
    times = benchmark_graph_frames(model, 2, (256, 144), frames=3, warmup=1, capture=False)
    assert len(times.frame_ms) == 3
    assert set(times.stage_ms) == {'instance bank get', 'frame graph', 'bank, ids, post-processing'}
    assert all(min(values) > 0 for values in times.stage_ms.values())
    bank = model.head.instance_bank  # it tracked: the last frame's cache is carried
    assert bank.cached_feature is not None and bool(bank.valid.all())


def _decoded_frames(model, pipeline: bool, capture: bool = False) -> tuple[list, FrameTimes]:
    results = []
    times = benchmark_graph_frames(
        model,
        2,
        (256, 144),
        frames=4,
        warmup=1,
        capture=capture,
        pipeline=pipeline,
        on_result=lambda index, result: results.append(
            (index, {k: v.detach().cpu() for k, v in result.items()})
        ),
    )
    return results, times


# The decoder's host-side steps on (suppression by track age, which reads the bank's
# first_new_id, and stitching, which reads the restart flags), so the pipeline's host
# decoding exercises them.
TRACKING_DECODER = {
    'model.head.decoder.duplicate_radius': 0.5,
    'model.head.decoder.duplicate_min_score': 0.2,
    'model.head.decoder.track_stitching': dict(radius=1.0, max_age=15, min_score=0.2),
}


def test_pipelined_graph_mode_decodes_every_frame_as_the_sequential_one():
    torch.manual_seed(0)
    model = prepare_model(build_untrained_model(TINY, TRACKING_DECODER))
    assert model.head.decoder.track_stitcher is not None
    sequential, _ = _decoded_frames(model, pipeline=False)
    pipelined, times = _decoded_frames(model, pipeline=True)
    # One frame more: the period of the last timed frame ends at the next one's start.
    assert [i for i, _ in pipelined] == list(range(6))
    assert [i for i, _ in sequential] == list(range(5))
    assert any(len(result['track_ids']) for _, result in sequential)  # ids were given
    for (_, a), (_, b) in zip(sequential, pipelined[:5], strict=True):
        assert a.keys() == b.keys()
        for name in a:
            torch.testing.assert_close(b[name], a[name], msg=name)
    assert len(times.frame_ms) == 4
    assert set(times.stage_ms) == {
        'instance bank get',
        'frame graph',
        'bank cache, ids, copy to host (+ waiting for the host)',
        'decoding on the host (overlapped)',
    }


def test_graph_mode_with_a_compiled_backbone_tracks_like_the_plain_one():
    torch.manual_seed(0)
    model = build_untrained_model(TINY)
    plain = prepare_model(copy.deepcopy(model))
    compiled = prepare_model(copy.deepcopy(model), compile_backend='aot_eager')
    whole = copy.deepcopy(plain)
    benchmark_graph_frames(plain, 2, (256, 144), frames=2, warmup=1, capture=False)
    # --compile --compile-mode M: the mode is the backbone's (prepare_model's), and the graph
    # tracker must not take it for its own (it refused it, found on the H100).
    benchmark_graph_frames(
        compiled,
        2,
        (256, 144),
        frames=2,
        warmup=1,
        capture=False,
        compile_mode='max-autotune-no-cudagraphs',
    )
    # The whole frame network compiled (--compile-frame; aot_eager: the graph, not codegen).
    benchmark_graph_frames(
        whole, 2, (256, 144), frames=2, warmup=1, capture=False, compile_frame='aot_eager'
    )
    a = plain.head.instance_bank
    for other in (compiled, whole):
        b = other.head.instance_bank
        torch.testing.assert_close(a.cached_anchor, b.cached_anchor, atol=1e-4, rtol=1e-4)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(InputError, match='missing.py: config not found'):
        benchmark_tool.main([str(tmp_path / 'missing.py')])
    with pytest.raises(InputError, match='missing.pth: checkpoint not found'):
        benchmark_tool.main([str(TINY), '--checkpoint', str(tmp_path / 'missing.pth')])
    with pytest.raises(InputError, match='--cams must be >= 1'):
        benchmark_tool.main([str(TINY), '--cams', '0'])
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match='--device cuda: no CUDA device is available'):
            benchmark_tool.main([str(TINY), '--device', 'cuda'])
    with pytest.raises(InputError, match='--overlap-copy is for --cuda-graph'):
        benchmark_tool.main([str(TINY), '--overlap-copy'])
    with pytest.raises(InputError, match='--pipeline is for --cuda-graph'):
        benchmark_tool.main([str(TINY), '--pipeline'])
    with pytest.raises(InputError, match='--compile-mode is for --compile'):
        benchmark_tool.main([str(TINY), '--compile-mode', 'max-autotune-no-cudagraphs'])
    with pytest.raises(InputError, match='--compile-frame is for --cuda-graph'):
        benchmark_tool.main([str(TINY), '--compile-frame'])
    with pytest.raises(InputError, match='without --compile'):
        benchmark_tool.main([str(TINY), '--cuda-graph', '--compile', '--compile-frame'])
    with pytest.raises(InputError, match='--cuda-graph needs a CUDA device'):
        benchmark_tool.main([str(TINY), '--device', 'cpu', '--cuda-graph'])


@pytest.mark.slow
def test_a_bad_argument_is_one_line_and_exit_2(tmp_path):
    command = [sys.executable, str(REPO_ROOT / 'tools/benchmark.py'), str(tmp_path / 'x.py')]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stdout == ''
    assert done.stderr.splitlines() == [f'benchmark: {tmp_path / "x.py"}: config not found']


def test_folded_batch_norms_and_channels_last_predict_the_same():
    torch.manual_seed(0)
    model = build_untrained_model(TINY)
    for module in model.modules():  # non-trivial statistics, so folding has work to do
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    plain = prepare_model(copy.deepcopy(model))
    fast = prepare_model(copy.deepcopy(model), channels_last=True, fold_bn=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.img_backbone.modules())
    batch = random_batch(1, 2, (256, 144), boxes=1)
    with torch.no_grad():
        a = plain.predict(**plain.data_preprocessor(batch, False))[0].pred_instances_3d
        b = fast.predict(**fast.data_preprocessor(batch, False))[0].pred_instances_3d
    torch.testing.assert_close(a.bboxes_3d, b.bboxes_3d, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(a.scores_3d, b.scores_3d, atol=1e-5, rtol=1e-4)


def test_stage_names_follow_the_operation_order():
    model = build_untrained_model(TINY)
    names = [name for _, name in stage_names(model)]
    assert names[:3] == ['backbone', 'neck', 'anchor encoding']
    assert names[3:7] == [
        'decoder0 aggregation',
        'decoder0 ffn',
        'decoder0 norm',
        'decoder0 refine',
    ]
    assert names[-1] == 'decoder1 refine'


def test_max_cameras_measured_and_fitted():
    def times(ms):
        return FrameTimes(frame_ms=[ms])

    measured = {1: times(10.0), 2: times(20.0), 4: times(40.0)}  # 10 ms per camera
    assert max_cameras(measured, 30) == (2, pytest.approx(3.333, abs=1e-3))
    assert max_cameras(measured, 200) == (None, pytest.approx(0.5))
    assert max_cameras({1: times(10.0)}, 30) == (1, None)


def test_compiled_backbone_and_neck_predict_the_same():
    torch.manual_seed(0)
    model = build_untrained_model(TINY)
    plain = prepare_model(copy.deepcopy(model))
    compiled = prepare_model(copy.deepcopy(model), compile_backend='aot_eager')
    batch = random_batch(1, 2, (256, 144), boxes=1)
    with torch.no_grad():
        a = plain.predict(**plain.data_preprocessor(batch, False))[0].pred_instances_3d
        b = compiled.predict(**compiled.data_preprocessor(batch, False))[0].pred_instances_3d
    torch.testing.assert_close(a.bboxes_3d, b.bboxes_3d, atol=1e-5, rtol=1e-5)
    assert [name for _, name in stage_names(compiled)][:2] == ['backbone', 'neck']


def test_camera_limit_is_checked_and_can_be_raised(capsys):
    with pytest.raises(InputError, match='--cams 21: the model takes at most 20 cameras'):
        benchmark_tool.main([str(TINY), '--cams', '21', '--frames', '1', '--warmup', '0'])
    report = benchmark_tool.main(
        [
            str(TINY),
            '--cams',
            '21',
            '--frames',
            '1',
            '--warmup',
            '0',
            '--size',
            '64',
            '48',
            '--cfg-options',
            'model.head.deformable_model.max_num_cams=21',
        ]
    )
    assert 'fp32/21' in report['runs']


@pytest.mark.gpu
def test_graph_mode_on_a_gpu_tracks_the_same_with_the_overlapped_copy():
    torch.manual_seed(0)
    model = prepare_model(build_untrained_model(TINY).cuda())
    anchors = []
    for overlap in (False, True):
        times = benchmark_graph_frames(
            model, 2, (256, 144), frames=4, warmup=2, overlap_copy=overlap
        )
        assert len(times.frame_ms) == 4 and times.peak_memory_mib > 0
        anchors.append(model.head.instance_bank.cached_anchor.clone())
    torch.testing.assert_close(anchors[0], anchors[1], atol=1e-4, rtol=1e-4)


@pytest.mark.gpu
def test_pipelined_graph_on_a_gpu_decodes_as_the_sequential_one():
    # The device work is the same in both modes; the pipeline decodes on the host (CPU
    # tensors) instead of the device, so boxes agree to rounding and ids exactly.
    torch.manual_seed(0)
    model = prepare_model(build_untrained_model(TINY, TRACKING_DECODER).cuda())
    sequential, _ = _decoded_frames(model, pipeline=False, capture=True)
    pipelined, times = _decoded_frames(model, pipeline=True, capture=True)
    assert len(times.frame_ms) == 4 and min(times.frame_ms) > 0
    for (_, a), (_, b) in zip(sequential, pipelined[:5], strict=True):
        assert torch.equal(a['track_ids'], b['track_ids'])
        torch.testing.assert_close(b['bboxes_3d'], a['bboxes_3d'], atol=1e-4, rtol=1e-4)
