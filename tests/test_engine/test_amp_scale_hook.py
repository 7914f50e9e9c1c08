"""AmpScaleHook: the loss scale and the skipped steps of fp16 AMP in the training log."""

from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub

from mmsparse4d.engine.hooks import AmpScaleHook


def _step(model, optimizer, scaler, overflow: bool):
    loss = model(torch.ones(1, 2)).sum()
    scaler.scale(loss * (float('inf') if overflow else 1.0)).backward()
    scaler.step(optimizer)  # skipped when the gradients are not finite
    scaler.update()  # ... and the scale halves
    optimizer.zero_grad()


def test_scale_and_skipped_steps_are_logged_at_the_interval():
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler('cpu', init_scale=1024.0)
    hub = MessageHub.get_instance('test_amp_scale_hook')
    # The parts of a Runner the hook reads: a real optimizer wrapper would hold the scaler.
    runner = SimpleNamespace(
        optim_wrapper=SimpleNamespace(loss_scaler=scaler), message_hub=hub, iter=0, hooks=[]
    )
    hook = AmpScaleHook(interval=2)
    overflows = [True, False, True, True]
    for index, overflow in enumerate(overflows):
        _step(model, optimizer, scaler, overflow)
        runner.iter = index
        hook.after_train_iter(runner, index)
        if index == 1:  # logged after the second step: one skip so far
            assert hub.get_scalar('train/amp_skipped_steps').current() == 1
            assert hub.get_scalar('train/amp_scale').current() == 512.0
    assert hub.get_scalar('train/amp_skipped_steps').current() == 3
    assert hub.get_scalar('train/amp_scale').current() == 128.0


def test_without_a_scaler_nothing_is_logged():
    hub = MessageHub.get_instance('test_amp_scale_hook_plain')
    runner = SimpleNamespace(optim_wrapper=SimpleNamespace(), message_hub=hub, iter=0, hooks=[])
    hook = AmpScaleHook(interval=1)
    hook.after_train_iter(runner, 0)
    assert 'train/amp_scale' not in hub.log_scalars
    with pytest.raises(ValueError, match='interval'):
        AmpScaleHook(interval=0)
