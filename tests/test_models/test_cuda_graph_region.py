import copy

import pytest
import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from mmsparse4d.models.losses.focal_loss import FocalLoss
from mmsparse4d.models.utils.cuda_graph_region import (
    CudaGraphRegion,
    aliased_parameters,
    run_graphed,
    signature_differences,
)
from mmsparse4d.testing import build_untrained_model, random_batch
from mmsparse4d.testing.distributed_equivalence import (
    deterministic_config,
    global_batch,
    without_random_layers,
)
from mmsparse4d.testing.tolerances import network_reductions, rounding_tolerance
from tests.conftest import REPO_ROOT

OAE_TINY = REPO_ROOT / 'projects/sparse4d/configs/sparse4d_oae_tiny_synthetic.py'


class ScaledFocalLoss(FocalLoss):
    """A classification loss with a learnable weight (as uncertainty weighting has)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.scale = nn.Parameter(torch.tensor(1.5))

    def forward(self, *args, **kwargs):
        return super().forward(*args, **kwargs) * self.scale


def _training_steps(graphs, device: str, steps: int, amp=None, loss_cls=None, after_step=None):
    """``steps`` forward and backward passes of the tiny outside-in model (no random layers,
    seed-0 weights) on consecutive frames: per step the losses and the gradients. graphs:
    False, 'head' (the head's regions) or 'model' (and the backbone and neck); loss_cls:
    the head's classification loss config, where not the config's; after_step: called
    with the model after each step."""
    cfg = deterministic_config(OAE_TINY)
    if loss_cls is not None:
        cfg.model.head.loss_cls = loss_cls
    if graphs == 'model':
        cfg.model.cuda_graphs = True
    else:
        cfg.model.head.cuda_graphs = bool(graphs)
    torch.manual_seed(0)
    model = without_random_layers(build_untrained_model(cfg).train()).to(device)
    size = tuple(cfg.get('image_size', (256, 144)))
    records = []
    for step in range(steps):
        data = model.data_preprocessor(global_batch(step, size), training=True)
        with torch.autocast(device, dtype=amp or torch.float32, enabled=amp is not None):
            losses = model(**data, mode='loss')
        sum(losses.values()).backward()
        gradients = {
            name: p.grad.detach().float().clone()
            for name, p in model.named_parameters()
            if p.grad is not None
        }
        model.zero_grad(set_to_none=True)
        if after_step is not None:
            after_step(model)
        records.append(({name: float(value.detach()) for name, value in losses.items()}, gradients))
    return records, model


def test_on_the_cpu_the_decoders_run_eagerly_and_the_log_says_so(caplog_mm):
    eager, _ = _training_steps(False, 'cpu', 3)
    graphed, model = _training_steps('model', 'cpu', 3)
    assert model.head.decoder_graphs.num_graphs == model.image_graphs.num_graphs == 0
    assert model.head.loss_graphs.num_graphs == 0
    for (losses, gradients), (losses_g, gradients_g) in zip(eager, graphed, strict=True):
        assert losses == losses_g  # the same operations, the same order: bit for bit
        assert all(torch.equal(gradients[name], gradients_g[name]) for name in gradients)
    said = 'Sparse4DHead decoders: runs eagerly, not as CUDA graphs: its inputs are not all on'
    assert sum(said in message for message in caplog_mm) == 1  # once, not every step


def test_graphed_losses_off_keeps_the_losses_eager_and_the_other_regions():
    options = {'model.head.cuda_graphs': True, 'model.head.graphed_losses': False}
    head = build_untrained_model(OAE_TINY, cfg_options=options).head
    assert head.loss_graphs is None
    assert head.decoder_graphs is not None and head.reid_graphs is not None


def test_a_copy_of_a_region_starts_empty_and_bad_options_are_refused():
    region = CudaGraphRegion('decoders', max_graphs=3, warmup=1)
    twin = copy.deepcopy(region)
    assert (twin.name, twin.max_graphs, twin.warmup, twin.num_graphs) == ('decoders', 3, 1, 0)
    with pytest.raises(ValueError, match='max_graphs and warmup must be >= 1'):
        CudaGraphRegion('decoders', max_graphs=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('amp', [None, torch.bfloat16])
@pytest.mark.parametrize('graphs', ['head', 'model'])
def test_cuda_graphs_give_the_eager_losses_and_gradients(graphs, amp):
    # Five consecutive frames: the first without a cache (one signature), then with the
    # cache and carried denoising groups (another, captured at the second, replayed after),
    # the largest box count changing (global_batch's): one width with static denoising.
    eager, model = _training_steps(False, 'cuda', 5, amp)
    graphed, graphed_model = _training_steps(graphs, 'cuda', 5, amp)
    assert graphed_model.head.decoder_graphs.num_graphs == 2
    assert graphed_model.head.reid_graphs.num_graphs == 1  # the same shapes every frame
    # The losses: one signature (the carried groups keep the denoising width here).
    assert graphed_model.head.loss_graphs.num_graphs == 1
    if graphs == 'model':
        assert graphed_model.image_graphs.num_graphs == 1
    dtype = amp or torch.float32
    terms, depth = network_reductions(model)
    for step, ((losses, gradients), (losses_g, gradients_g)) in enumerate(
        zip(eager, graphed, strict=True)
    ):
        assert losses.keys() == losses_g.keys()
        for name, value in losses.items():
            tolerance = rounding_tolerance(dtype, terms, depth=depth, scale=max(abs(value), 1e-6))
            assert abs(losses_g[name] - value) <= tolerance['atol'], (step, name)
        assert gradients.keys() == gradients_g.keys(), step
        for name, gradient in gradients.items():
            scale = max(float(gradient.abs().max()), 1e-12)
            tolerance = rounding_tolerance(dtype, terms, depth=depth, scale=scale)
            assert float((gradients_g[name] - gradient).abs().max()) <= tolerance['atol'], (
                step,
                name,
            )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_a_loss_with_a_learnable_weight_gets_its_gradient_through_the_losses_graphs():
    # The weight changes in place between steps (as an optimizer's step does): the replays
    # read it, and its gradient comes back through the graphs.
    loss_cls = dict(type=ScaledFocalLoss, gamma=2.0, alpha=0.25, loss_weight=2.0)

    def double_the_weight(model):
        with torch.no_grad():
            model.head.loss_cls.scale.mul_(2)

    runs = [
        _training_steps(graphs, 'cuda', 3, loss_cls=loss_cls, after_step=double_the_weight)
        for graphs in (False, 'head')
    ]
    (eager, model), (graphed, graphed_model) = runs
    assert graphed_model.head.loss_graphs.num_graphs == 1  # captured once, replayed after
    terms, depth = network_reductions(model)
    for (losses, gradients), (losses_g, gradients_g) in zip(eager, graphed, strict=True):
        for name in ('loss_cls_0', 'loss_cls_dn_1'):
            scale = max(abs(losses[name]), 1e-6)
            tolerance = rounding_tolerance(torch.float32, terms, depth=depth, scale=scale)
            assert abs(losses_g[name] - losses[name]) <= tolerance['atol'], name
        gradient = gradients['head.loss_cls.scale']
        assert float(gradient.abs()) > 0
        scale = float(gradient.abs())
        tolerance = rounding_tolerance(torch.float32, terms, depth=depth, scale=scale)
        assert float((gradients_g['head.loss_cls.scale'] - gradient).abs()) <= tolerance['atol']


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_the_region_recaptures_after_its_parameters_move_and_a_deep_copy_trains():
    _, model = _training_steps('head', 'cuda', 3)
    assert model.head.decoder_graphs.num_graphs == 2
    twin = copy.deepcopy(model)
    assert twin.head.decoder_graphs.num_graphs == 0
    model.half().float()  # new parameter memory: the graphs read the old one
    size = (256, 144)
    data = model.data_preprocessor(global_batch(3, size), training=True)
    sum(model(**data, mode='loss').values()).backward()
    assert model.head.decoder_graphs.num_graphs == 1
    # A parameter object replaced (its values the same): captured again, and it trains.
    layer = next(m for m in model.head.modules() if isinstance(m, nn.Linear))
    layer.weight = nn.Parameter(layer.weight.detach().clone())
    captured = model.head.decoder_graphs.capture_seconds
    data = model.data_preprocessor(global_batch(4, size), training=True)
    sum(model(**data, mode='loss').values()).backward()
    assert model.head.decoder_graphs.capture_seconds > captured
    assert model.head.decoder_graphs.num_graphs == 1
    assert layer.weight.grad is not None
    data = twin.data_preprocessor(global_batch(3, size), training=True)
    losses = twin(**data, mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_a_parameter_used_eagerly_in_the_same_step_is_captured_and_gets_both_gradients():
    # The layer runs eagerly before the region in each step: its gradient accumulator then
    # exists on the default stream while the region captures (CUDA refuses to feed it from
    # the capture stream); the region's gradient and the eager one must add up.
    torch.manual_seed(0)
    layer = nn.Linear(8, 8).cuda()
    region = CudaGraphRegion('shared layer')
    x = torch.randn(4, 8, device='cuda')
    grads = []
    for graphed in (False, True, True, True):
        layer.zero_grad()
        eager_part = layer(x)
        if graphed:
            inside = run_graphed(region, lambda t: layer(t).tanh(), layer, eager_part)
        else:
            inside = layer(eager_part).tanh()
        inside.square().sum().backward()
        grads.append(layer.weight.grad.clone())
    assert region.num_graphs == 1
    for grad in grads[1:]:
        torch.testing.assert_close(grad, grads[0])


def _signatures_over_frames(method: str, static: bool) -> list:
    """The region signatures of the head's ``method`` over four training frames whose
    largest box count changes, with or without the static denoising width."""
    model = build_untrained_model(
        OAE_TINY, cfg_options={'model.head.sampler.static_dn_width': static}
    ).train()
    head, signatures = model.head, []
    original = getattr(head, method)

    def recorded(*args):
        leaves, spec = tree_flatten(args)
        tensors = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]
        signatures.append(CudaGraphRegion._signature(leaves, spec, tensors))
        return original(*args)

    setattr(head, method, recorded)
    for frame, boxes in enumerate((4, 2, 6, 3)):
        data = model.data_preprocessor(random_batch(boxes=boxes, frame=frame), training=True)
        sum(model(**data, mode='loss').values()).backward()
    return signatures


@pytest.mark.parametrize('static', [False, True])
def test_with_a_static_denoising_width_the_decoders_keep_one_signature(static):
    # The carried groups' ground truth (``current``) and the denoising groups are as wide
    # as max_dn_gt with the static width, so every frame after the first has one signature
    # (one capture); without it, one per width.
    signatures = _signatures_over_frames('decode_frame', static)
    assert (len(set(signatures[1:])) == 1) is static


@pytest.mark.parametrize('static', [False, True])
def test_with_a_static_denoising_width_the_losses_keep_one_signature(static):
    # The losses' inputs after the matching do not follow the box count ([S, B, A] matches)
    # except through the denoising width: one signature from the second frame with the
    # static width (the carried groups join there), one per width without it.
    signatures = _signatures_over_frames('_stacked_stage_losses', static)
    assert (len(set(signatures[1:])) == 1) is static


def test_a_full_region_names_what_varies_among_its_signatures():
    # What a user needs to make the signatures few: here the camera axis of the features
    # (tensor 0) and a constant; the anchors (tensor 1) are the same in every call.
    def key(cams, flag, dtype=torch.float32):
        args = ([torch.zeros(2, cams, 8, dtype=dtype), torch.zeros(2, 900, 11)], flag)
        leaves, spec = tree_flatten(args)
        tensors = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]
        return CudaGraphRegion._signature(leaves, spec, tensors), (True,)

    keys = [key(cams, cams > 5) for cams in range(4, 10)]
    said = signature_differences(keys)
    assert said == (
        'the constant arguments | tensor 0: shape (2, 4, 8), (2, 5, 8), (2, 6, 8), (2, 7, 8), '
        '... (6 in all)'
    )
    assert signature_differences([key(4, True), key(4, True, torch.bfloat16)]) == (
        'tensor 0: dtype torch.float32, torch.bfloat16'
    )
    assert signature_differences([key(4, True)] * 2) == 'nothing (the same signature)'


@pytest.mark.parametrize('raises', [False, True])
def test_aliased_parameters_come_back_for_a_module_reached_by_several_paths(raises):
    # A capture runs the block on aliases of the parameters; afterwards (also after an
    # error) every path must lead to the Parameter again, or the optimiser would step
    # tensors the model no longer uses.
    layer = nn.Linear(3, 3)
    model = nn.Module()
    model.first, model.again, model.stack = layer, layer, nn.ModuleList([layer] * 3)
    weight, bias = layer.weight, layer.bias
    named = dict(model.named_parameters())
    aliases = {name: p.detach().requires_grad_(True) for name, p in named.items()}
    try:
        with aliased_parameters(model, aliases):
            assert model.again.weight is aliases['first.weight']
            assert model.stack[2].bias is aliases['first.bias']
            if raises:
                raise RuntimeError('a capture that fails')
    except RuntimeError:
        assert raises
    for _, p in model.named_parameters(remove_duplicate=False):
        assert type(p) is nn.Parameter
    assert layer.weight is weight and layer.bias is bias


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_a_region_called_inside_another_capture_runs_inside_it():
    # The inner region must not capture graphs of its own on the outer capture's parameter
    # aliases: it runs eagerly there, part of the outer graphs, and the gradients reach the
    # parameters.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8)).cuda()
    outer, inner = CudaGraphRegion('outer'), CudaGraphRegion('inner')

    def inner_block(t):
        return model[1](t).tanh()

    def outer_block(t):
        return run_graphed(inner, inner_block, model, model[0](t))

    x = torch.randn(4, 8, device='cuda')
    grads = []
    for graphed in (False, True, True):
        model.zero_grad()
        out = run_graphed(outer, outer_block, model, x) if graphed else inner_block(model[0](x))
        out.square().sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    assert outer.num_graphs == 1 and inner.num_graphs == 0
    for later in grads[1:]:
        for grad, first in zip(later, grads[0], strict=True):
            torch.testing.assert_close(grad, first)
