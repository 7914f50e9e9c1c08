"""An iteration-based training loop whose resume positions the sampler instead of loading
every batch it skips.

mmengine's ``IterBasedTrainLoop`` resumes at iteration N by drawing N batches from the data
loader and throwing them away: every skipped sample is read, decoded and augmented. For the
small synthetic recipe that was 144 s before the first step at iteration 1450, paid again by
every slice of a time-sliced run (``tools/recipes/train_in_slices.sh``). Here the sampler
skips: the loop sets the epoch and the batch within it, and the first batch drawn is the one
an uninterrupted run would draw next (same frames in the same slots). What differs from an
uninterrupted run are the random augmentation draws, as after any restart of the data
workers.

A sampler takes part by having ``fast_forward(batches)`` (skip that many batches at the
start of its next pass) next to ``set_epoch``, and a ``batch_size`` equal to the data
loader's; with any other sampler the loop replays the batches as mmengine does, and logs
that it does so. (The loop's iterator has already started its workers when the resume
happens, so the batches they had queued are still loaded once and dropped.)
"""

import logging

from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from mmengine.runner.loops import _InfiniteDataloaderIterator

from ...datasets.slot_data_loader import SlotDataLoader, with_slot_workers
from ...datasets.worker_transfer import with_small_tensors_by_value
from ...registry import LOOPS


def _sampler_of(dataloader):
    sampler = getattr(dataloader, 'sampler', None)
    if hasattr(sampler, 'fast_forward'):
        return sampler
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    return getattr(batch_sampler, 'sampler', None)


def fast_forward(iterator, dataloader, batches: int) -> bool:
    """Move mmengine's infinite data-loader iterator ``batches`` batches on without loading
    them, if the sampler can skip (``fast_forward``); returns whether it could.

    Args:
        iterator: the loop's ``_InfiniteDataloaderIterator`` over ``dataloader``.
        dataloader: a ``torch.utils.data.DataLoader`` whose sampler has ``set_epoch``.
        batches: batches already trained on (the resumed iteration).
    """
    sampler = _sampler_of(dataloader)
    if not (hasattr(sampler, 'fast_forward') and hasattr(sampler, 'set_epoch')):
        return False
    if getattr(sampler, 'batch_size', None) != dataloader.batch_size:
        return False  # the sampler counts its own batches: skipping would land elsewhere
    per_epoch = len(dataloader)
    if per_epoch <= 0:
        raise ValueError('fast_forward: the data loader yields no batches')
    epoch, offset = divmod(batches, per_epoch)
    sampler.set_epoch(epoch)
    sampler.fast_forward(offset)
    # The same state as after drawing ``batches`` batches: the epoch the iterator counts
    # (it sets the next one on the sampler when this pass ends) and a fresh pass.
    iterator._epoch = epoch
    iterator._iterator = iter(dataloader)
    return True


class PassIterator(_InfiniteDataloaderIterator):
    """mmengine's infinite data-loader iterator without its 2 s sleep at the end of every
    pass (a workaround for a deadlock its maintainers could not reproduce; 2 s in every
    128 iterations of the ablation's 16 layouts at batch 16). The next pass starts after
    the finished one has shut its workers down (torch does that at a pass's end unless the
    workers persist, and then the same workers serve the next pass), outside the handling
    of the pass's end, where mmengine's starts it: once that one has crossed a pass's end,
    its workers are left to the garbage collector, which stops them 5 s each (measured on
    the tests' loaders). The same batches and epochs as mmengine's (test)."""

    @classmethod
    def taking_over(cls, iterator: _InfiniteDataloaderIterator) -> 'PassIterator':
        """This iterator in place of mmengine's ``iterator``, with its loader, pass and
        epoch (no new pass: its workers may have started)."""
        taken = cls.__new__(cls)
        taken.__dict__.update(vars(iterator))
        return taken

    def __next__(self):
        try:
            return next(self._iterator)
        except StopIteration:
            pass
        self._epoch += 1
        sampler = getattr(self._dataloader, 'sampler', None)
        if not hasattr(sampler, 'set_epoch'):
            sampler = getattr(getattr(self._dataloader, 'batch_sampler', None), 'sampler', None)
        if hasattr(sampler, 'set_epoch'):
            sampler.set_epoch(self._epoch)
        print_log(
            f'Data pass {self._epoch + 1} starts (sampler epoch {self._epoch})', logger='current'
        )
        self._iterator = iter(self._dataloader)
        return next(self._iterator)


@LOOPS.register_module()
class FastResumeIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` with a resume that skips batches in the sampler (module
    docstring), data workers that send small tensors by value and, for video data, own
    batch slots; otherwise the same loop, arguments and hooks.

    Args:
        slot_workers: 'auto' (default), True or False: see
            ``mmsparse4d.datasets.slot_data_loader.with_slot_workers``.
        small_tensors_by_value: True (default) or False: see
            ``mmsparse4d.datasets.worker_transfer``.
        Others: as ``IterBasedTrainLoop``.
    """

    def __init__(
        self,
        runner,
        dataloader,
        max_iters: int,
        val_begin: int = 1,
        val_interval: int = 1000,
        dynamic_intervals=None,
        slot_workers='auto',
        small_tensors_by_value: bool = True,
    ):
        if isinstance(dataloader, dict):
            # Built here rather than by the base class: its iterator starts the workers.
            dataloader = runner.build_dataloader(
                dataloader,
                seed=runner.seed,
                diff_rank_seed=runner._randomness_cfg.get('diff_rank_seed', False),
            )
        # Before the slot loader copies the worker set-up into its own loader.
        dataloader = with_small_tensors_by_value(dataloader, small_tensors_by_value)
        super().__init__(
            runner,
            with_slot_workers(dataloader, slot_workers),
            max_iters,
            val_begin,
            val_interval,
            dynamic_intervals,
        )
        self.dataloader_iterator = PassIterator.taking_over(self.dataloader_iterator)

    def run(self):
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        if self._iter > 0:
            if fast_forward(self.dataloader_iterator, self.dataloader, self._iter):
                print_log(
                    f'Resumed the data at batch {self._iter} through the sampler, '
                    'without loading the skipped batches',
                    logger='current',
                )
            else:
                sampler = _sampler_of(self.dataloader)
                name = type(sampler).__name__ if sampler is not None else 'the data loader'
                print_log(
                    f'{name} cannot skip batches (no fast_forward and set_epoch, or a '
                    "batch size other than the data loader's): loading the "
                    f'{self._iter} trained batches again to skip them',
                    logger='current',
                    level=logging.WARNING,
                )
                for _ in range(self._iter):
                    next(self.dataloader_iterator)
        try:
            while self._iter < self._max_iters and not self.stop_training:
                self.runner.model.train()
                data_batch = next(self.dataloader_iterator)
                self.run_iter(data_batch)
                self._decide_current_val_interval()
                at_interval = self._iter % self.val_interval == 0 or self._iter == self._max_iters
                if (
                    self.runner.val_loop is not None
                    and self._iter >= self.val_begin
                    and at_interval
                ):
                    self.runner.val_loop.run()
        finally:
            if isinstance(self.dataloader, SlotDataLoader):
                self.dataloader.close()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model
