"""ONNX export of the MSDA op as nv::MSDA, and ONNX Runtime with our custom-op library."""

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from mmsparse4d.ops import deformable_aggregation, random_deformable_aggregation_inputs
from mmsparse4d.ops.deformable_aggregation_onnx import (
    INPUT_NAMES,
    ONNX_IR_VERSION,
    export_onnx,
    onnxruntime_library_path,
    onnxruntime_session,
)

# Warnings torch raises while exporting (not our code): named one by one.
pytestmark = [
    pytest.mark.filterwarnings('ignore:You are using the legacy TorchScript-based ONNX export'),
    pytest.mark.filterwarnings('ignore:The feature will be removed:DeprecationWarning'),
    pytest.mark.filterwarnings('ignore:# The axis name:UserWarning'),
    pytest.mark.filterwarnings('ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated'),
]


class TwoAggregations(nn.Module):
    """Two calls of the op, as two decoder layers make."""

    def forward(self, features, spatial_shape, scale_start_index, sampling_location, weights):
        first = deformable_aggregation(
            features, spatial_shape, scale_start_index, sampling_location, weights
        )
        second = deformable_aggregation(
            features * 2, spatial_shape, scale_start_index, sampling_location.flip(-1), weights
        )
        return first - second


def inputs_for(cams, batch=1, anchors=10, seed=0, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    return random_deformable_aggregation_inputs(
        batch, [[(8, 12), (4, 6)]] * cams, anchors, 4, 2, 16, dtype=dtype, generator=generator
    )


def export(tmp_path, exporter):
    path = tmp_path / f'two_{exporter}.onnx'
    if exporter == 'torchscript':
        dynamic = dict(
            dynamic_axes={
                'features': {0: 'B', 1: 'F'},
                'spatial_shape': {0: 'N'},
                'scale_start_index': {0: 'N'},
                'sampling_location': {0: 'B', 1: 'A', 3: 'N'},
                'weights': {0: 'B', 1: 'A', 3: 'N'},
            }
        )
    else:
        batch, pixels, cams, anchors = (torch.export.Dim(n) for n in ('B', 'F', 'N', 'A'))
        dynamic = dict(
            dynamic_shapes=(
                {0: batch, 1: pixels},
                {0: cams},
                {0: cams},
                {0: batch, 1: anchors, 3: cams},
                {0: batch, 1: anchors, 3: cams},
            )
        )
    proto = export_onnx(
        TwoAggregations(),
        inputs_for(cams=3),
        path,
        input_names=INPUT_NAMES,
        output_names=['output'],
        exporter=exporter,
        **dynamic,
    )
    return path, proto


@pytest.fixture(scope='module', params=['torchscript', 'dynamo'])
def exported(request, tmp_path_factory):
    return export(tmp_path_factory.mktemp(request.param), request.param)


def test_one_msda_node_per_call_with_the_contract(exported):
    path, proto = exported
    nodes = [node for node in proto.graph.node if node.domain == 'nv']
    assert len(nodes) == 2
    for node in nodes:
        assert node.op_type == 'MSDA'
        assert len(node.input) == 5 and len(node.output) == 1
        assert len(node.attribute) == 0
    assert proto.ir_version == ONNX_IR_VERSION
    opsets = {o.domain: o.version for o in proto.opset_import}
    assert opsets[''] == 17 and opsets['nv'] == 1
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


@pytest.mark.parametrize('cams, batch', [(3, 1), (1, 2), (6, 1)])
def test_onnxruntime_matches_pytorch_with_dynamic_batch_and_cameras(exported, cams, batch):
    path, _ = exported
    session = onnxruntime_session(path)
    inputs = inputs_for(cams=cams, batch=batch, seed=cams + batch)
    (output,) = session.run(None, {n: t.numpy() for n, t in zip(INPUT_NAMES, inputs, strict=True)})
    expected = TwoAggregations()(*inputs).numpy()
    np.testing.assert_allclose(output, expected, rtol=1e-6, atol=1e-6)
    assert np.abs(expected).max() > 1e-3


def test_onnxruntime_runs_float64_with_int32_metadata(tmp_path):
    features, shape, start, location, weights = inputs_for(cams=2, seed=5, dtype=torch.float64)
    inputs = (features, shape.int(), start.int(), location, weights)
    path = tmp_path / 'f64.onnx'
    export_onnx(
        TwoAggregations(),
        inputs,
        path,
        input_names=INPUT_NAMES,
        output_names=['output'],
        exporter='torchscript',
    )
    feeds = {n: t.numpy() for n, t in zip(INPUT_NAMES, inputs, strict=True)}
    (output,) = onnxruntime_session(path).run(None, feeds)
    assert output.dtype == np.float64
    np.testing.assert_allclose(output, TwoAggregations()(*inputs).numpy(), rtol=1e-12, atol=1e-12)


def test_onnxruntime_reports_bad_inputs_by_name(exported):
    path, _ = exported
    session = onnxruntime_session(path)
    inputs = inputs_for(cams=3)
    feeds = {n: t.numpy() for n, t in zip(INPUT_NAMES, inputs, strict=True)}
    feeds['scale_start_index'] = feeds['scale_start_index'] + 1000
    with pytest.raises(Exception, match="nv::MSDA: argument 'scale_start_index' places camera"):
        session.run(None, feeds)


def test_sessions_take_omp_num_threads_and_warn_on_nonsense(exported, monkeypatch):
    path, _ = exported
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    assert onnxruntime_session(path).get_session_options().intra_op_num_threads == 1
    monkeypatch.setenv('OMP_NUM_THREADS', 'all')
    with pytest.warns(UserWarning, match="OMP_NUM_THREADS='all' is not a positive integer"):
        session = onnxruntime_session(path)
    assert session.get_session_options().intra_op_num_threads == 0  # ONNX Runtime's default
    monkeypatch.delenv('OMP_NUM_THREADS')
    assert onnxruntime_session(path).get_session_options().intra_op_num_threads == 0


def test_missing_library_says_how_to_build(monkeypatch, tmp_path):
    monkeypatch.setenv('MMSPARSE4D_ORT_LIBRARY', str(tmp_path / 'absent.so'))
    with pytest.raises(FileNotFoundError, match='make onnxruntime-ops'):
        onnxruntime_library_path()


def test_unknown_exporter_is_refused(tmp_path):
    with pytest.raises(ValueError, match="exporter must be 'dynamo' or 'torchscript'"):
        export_onnx(
            TwoAggregations(),
            inputs_for(2),
            tmp_path / 'x.onnx',
            input_names=INPUT_NAMES,
            output_names=['output'],
            exporter='tensorrt',
        )
