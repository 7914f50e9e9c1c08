"""CompileRegionsHook: the head's operations, backbone and neck compiled for training."""

import copy
import logging
from types import SimpleNamespace

import pytest
import torch

from mmsparse4d.engine.hooks import CompileRegionsHook
from mmsparse4d.testing import (
    build_untrained_model,
    network_reductions,
    random_batch,
    rounding_tolerance,
)


def _loss(model, data, seed):
    torch.manual_seed(seed)  # the same denoising noise and dropout for both models
    losses = model(**model.data_preprocessor(data, training=True), mode='loss')
    return sum(losses.values()), losses


# Dynamo reads .grad of the neck's inputs while tracing (its internals, not our code).
@pytest.mark.filterwarnings('ignore:The .grad attribute of a Tensor that is not a leaf')
def test_compiled_regions_train_like_the_eager_model():
    torch.manual_seed(0)
    model = build_untrained_model()
    model.train()
    compiled = copy.deepcopy(model)
    # The parts of a Runner the hook reads; aot_eager traces forward and backward graphs as
    # inductor would, without generating code (fast on the CPU).
    runner = SimpleNamespace(model=compiled, logger=logging.getLogger('test_compile_regions'))
    CompileRegionsHook(backend='aot_eager').before_train(runner)
    names = [name for name, _ in model.named_parameters()]
    assert names == [name for name, _ in compiled.named_parameters()]  # checkpoints unchanged
    data = random_batch(cams=(3, 2))
    # The traced graphs reorder sums (the backward's above all), and each CPU's kernels
    # order them their own way: equal up to rounding. Forward: the network's reductions.
    # Backward: the chain twice, and the stem's weight gradient sums over every output pixel
    # of every image; each gradient relative to its largest element (its terms' scale).
    # Measured (AVX-512, AVX2, default kernels): losses equal, gradients within 7e-6 of their
    # largest element; the bound is ~3e-3. A region whose graph lost a path would be off by
    # ~1 of it.
    terms, depth = network_reductions(model)
    images = sum(data['inputs']['img'][b].shape[0] for b in range(2))
    height, width = data['inputs']['img'][0].shape[-2:]
    stem_pixels = images * (height // 2) * (width // 2)
    forward = rounding_tolerance(torch.float32, terms, depth=depth)
    backward = rounding_tolerance(torch.float32, max(terms, stem_pixels), depth=2 * depth)
    for step in range(2):
        expected, expected_parts = _loss(model, data, step)
        got, got_parts = _loss(compiled, data, step)
        for key, value in expected_parts.items():
            torch.testing.assert_close(got_parts[key], value, **forward, msg=key)
        expected.backward()
        got.backward()
        for (name, a), b in zip(model.named_parameters(), compiled.parameters(), strict=True):
            if a.grad is not None:
                scale = a.grad.abs().max().clamp(min=torch.finfo(a.dtype).tiny)
                torch.testing.assert_close(b.grad / scale, a.grad / scale, **backward, msg=name)
        model.zero_grad()
        compiled.zero_grad()
    # The regions are compiled modules (no graph breaks: one graph each).
    assert all(layer._compiled_call_impl is not None for layer in compiled.head.layers)
    assert compiled.img_backbone._compiled_call_impl is not None


def test_a_region_the_model_lacks_is_named():
    runner = SimpleNamespace(model=build_untrained_model(), logger=logging.getLogger('t'))
    with pytest.raises(ValueError, match="has no 'head.decoder_layers'"):
        CompileRegionsHook(backend='aot_eager', regions=['head.decoder_layers']).before_train(
            runner
        )
    with pytest.raises(ValueError, match="has no 'img_backbone'"):
        CompileRegionsHook(backend='aot_eager').before_train(
            SimpleNamespace(model=torch.nn.Linear(2, 2), logger=logging.getLogger('t'))
        )
