"""Make fp16 loss scaling visible in the training log.

mmengine logs ``grad_norm`` as the mean over the logging window, so a single step whose
gradients overflowed (skipped by the loss scaler) shows the whole window as inf or NaN,
which reads like a broken run. This hook logs, at each logging step, the current loss scale
(``amp_scale``) and how many steps the scaler skipped so far (``amp_skipped_steps``: each
skip halves the scale). The count is kept on the device and read only when logged.
"""

import torch
from mmengine.hooks import Hook

from ...registry import HOOKS


@HOOKS.register_module()
class AmpScaleHook(Hook):
    """Does nothing unless the optimizer wrapper has an enabled loss scaler (fp16 AMP).

    Args:
        interval: log every this many iterations (default: the logger hook's interval).
    """

    priority = 'NORMAL'  # before the logger hook (BELOW_NORMAL) reads the message hub

    def __init__(self, interval: int | None = None):
        if interval is not None and interval < 1:
            raise ValueError(f'AmpScaleHook: interval must be >= 1, got {interval}')
        self.interval = interval
        self._previous = None  # the scale after the previous step, on the device
        self._skipped = None

    def before_train(self, runner) -> None:
        if self.interval is None:
            loggers = [h for h in runner.hooks if type(h).__name__ == 'LoggerHook']
            self.interval = loggers[0].interval if loggers else 50

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        scaler = getattr(runner.optim_wrapper, 'loss_scaler', None)
        scale = getattr(scaler, '_scale', None)  # the scaler's device tensor (no host read)
        if scaler is None or not scaler.is_enabled() or scale is None:
            return
        scale = scale.detach().clone()
        if self._previous is None:
            self._skipped = torch.zeros((), dtype=torch.long, device=scale.device)
            self._previous = torch.full_like(scale, getattr(scaler, '_init_scale', 2.0**16))
        # The scale only falls when a step overflowed (and was skipped).
        self._skipped += (scale < self._previous).long()
        self._previous = scale
        if self.every_n_train_iters(runner, self.interval):
            runner.message_hub.update_scalar('train/amp_scale', float(scale))
            runner.message_hub.update_scalar('train/amp_skipped_steps', int(self._skipped))
