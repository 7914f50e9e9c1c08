"""A training data loader whose workers each own fixed slots of a sequence sampler's batches.

torch's ``DataLoader`` hands whole batches to its workers in turn: with W workers, worker w
loads batches w, w + W, ... A slot of ``SequentialGroupSampler`` walks one sub-sequence
frame by frame, so every worker reads every slot's videos W frames apart: from an mp4 each
read decodes the W - 1 frames in between (or seeks to a keyframe and decodes from there),
and every worker keeps every slot's videos open (B x cameras decoders, more than its
``FrameCache`` holds, so they are reopened and seek again).

``SlotDataLoader`` gives worker w the same slots of every batch (slots w, w + W', ... with
W' = min(W, B) workers): its reads of a video follow the slot's frames, decoded once, and
it keeps only its own slots' videos open. The batches are the same samples in the same
slots as the plain loader's (test); only the random augmentation draws differ, as they do
with any other worker count. The workers return their slots' samples uncollated; a thread
of the training process puts each batch back in slot order and hands it to a few collating
threads, which stack it with the config's ``collate_fn`` and pin it when the loader asked
for pinned memory (torch's copies release the interpreter lock, so the stacking overlaps
the step rather than stalling the thread that launches the GPU's work). One collating
thread capped the loader: at 960x540 with 10 cameras, stacking took it 16-19 ms of CPU per
sample on the H100's host (``docs/performance.md``); the batches still come out in order.

Chosen by ``with_slot_workers``, which ``FastResumeIterBasedTrainLoop`` applies
(``slot_workers``) to the loader the Runner built;
``tools/analysis_tools/benchmark_data.py --batch B`` times both loaders.
"""

import inspect
import logging
import queue
import threading
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import torch
from mmengine.logging import print_log
from torch.utils.data import DataLoader, Sampler, get_worker_info
from torch.utils.data._utils.pin_memory import pin_memory

from .transforms.frame_cache import is_video_frame_key

# Batches collated or being collated ahead of the training step (queued, plus the one the
# gathering thread has submitted and waits to queue).
SLOT_QUEUE_DEPTH = 2
# Threads that collate (and pin) batches side by side: up to SLOT_QUEUE_DEPTH + 1 at once.
SLOT_COLLATE_THREADS = 3
# A stopped pass's gathering thread is waited for this long before a warning.
CLOSE_WAIT_S = 60.0
# train_cfg.slot_workers (see with_slot_workers).
SLOT_WORKER_MODES = ('auto', True, False)


def slot_owners(batch_size: int, workers: int) -> list[list[int]]:
    """Slots of each worker: worker w owns slots w, w + W, ... of every batch (W =
    min(workers, batch_size); a worker without a slot would idle)."""
    used = min(workers, batch_size)
    return [list(range(w, batch_size, used)) for w in range(used)]


class SlotChunks(Sampler):
    """The index lists a slot-owning loader fetches: per batch of ``sampler`` (``batch_size``
    consecutive indices, slot b at position b), one list per worker holding the indices of
    its slots, in worker order, so that torch's round-robin dispatch gives list w of every
    batch to worker w."""

    def __init__(self, sampler, batch_size: int, owners: list[list[int]]):
        self.sampler = sampler
        self.batch_size = batch_size
        self.owners = owners

    def __iter__(self) -> Iterator[list[int]]:
        batch = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                for slots in self.owners:
                    yield [batch[slot] for slot in slots]
                batch = []

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size * len(self.owners)


def _tagged(samples: list) -> tuple[int, list]:
    """The worker's part of a batch, uncollated, with the worker's id."""
    info = get_worker_info()
    return (-1 if info is None else info.id), samples


class _End:
    """Queued after the last batch."""


class _Failure:
    """An exception raised while loading, queued for the consumer to raise."""

    def __init__(self, error: BaseException):
        self.error = error


class PassClosedError(RuntimeError):
    """A pass of a ``SlotDataLoader`` was called after the loader stopped it."""


class WorkerOrderError(RuntimeError):
    """A worker's part of a batch came from another worker than the one owning its slots."""


def _put(out: queue.Queue, stop: threading.Event, item) -> bool:
    while not stop.is_set():
        try:
            out.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


class _PassSettings(NamedTuple):
    """What a pass's threads read of their ``SlotDataLoader``: not the loader itself, so
    that neither the loader nor a pass's iterator is kept alive by its threads."""

    collate_fn: Callable
    pin_device: int | None
    owners: list[list[int]]
    batch_size: int


def _collate(settings: _PassSettings, batch: list):
    collated = settings.collate_fn(batch)
    if settings.pin_device is not None:
        collated = pin_memory(collated, f'cuda:{settings.pin_device}')
    return collated


def _set_pin_device(device: int | None) -> None:
    if device is not None:
        torch.cuda.set_device(device)  # as torch's own pinning thread does


def _fill(
    settings: _PassSettings, parts, out: queue.Queue, stop: threading.Event, threads: int
) -> None:
    """The gathering thread of one pass over ``parts`` (the workers' iterator): puts each
    batch's parts in slot order and queues, in batch order, the future of its collation
    by one of ``threads`` collating threads. It holds no reference to its
    ``_SlotIterator``, so that dropping the iterator stops it."""
    collating = ThreadPoolExecutor(
        threads,
        thread_name_prefix='slot-collate',
        initializer=_set_pin_device,
        initargs=(settings.pin_device,),
    )
    try:
        while not stop.is_set():
            batch = [None] * settings.batch_size
            try:
                for worker, slots in enumerate(settings.owners):
                    if stop.is_set():
                        return
                    loaded_by, samples = next(parts)
                    if loaded_by != worker:
                        raise WorkerOrderError(
                            f'SlotDataLoader: the part of worker {worker} came from worker '
                            f'{loaded_by}: this torch does not hand index lists to its workers '
                            'in turn; set train_cfg.slot_workers=False'
                        )
                    for slot, sample in zip(slots, samples, strict=True):
                        batch[slot] = sample
            except StopIteration:
                break
            if not _put(out, stop, collating.submit(_collate, settings, batch)):
                return
        _put(out, stop, _End())
    except BaseException as error:  # noqa: BLE001 - handed to the consumer
        # Let go of the workers' iterator now, here and in the finished frames of the
        # error's traceback (kept for its lines): the queued error would otherwise hold it
        # in a reference cycle, leaving a pass's workers to the garbage collector, whose
        # shutdown of them waits 5 s each.
        parts = None  # noqa: F841
        traceback.clear_frames(error.__traceback__)
        _put(out, stop, _Failure(error))
    finally:
        # Stopped: drop the queued collations. Ended or failed: the queued batches stay due.
        collating.shutdown(wait=False, cancel_futures=stop.is_set())


def _stop_gathering(thread: threading.Thread, stop: threading.Event, until_stopped: bool) -> None:
    """Stop a pass's gathering thread and wait for it (at most the worker part it is waiting
    for). After ``CLOSE_WAIT_S`` seconds a warning says so; then it is waited for to the end
    where ``until_stopped`` (persistent workers: the next pass resets the torch iterator the
    thread still reads, which would wait for ever for the reply that thread takes), else
    left running. Collations under way finish in their threads; queued ones are dropped."""
    stop.set()
    if thread is threading.current_thread():
        return
    thread.join(CLOSE_WAIT_S)
    if not thread.is_alive():
        return
    if until_stopped:
        print_log(
            "SlotDataLoader: the last pass's gathering thread has waited over "
            f'{CLOSE_WAIT_S:.0f} s for a data worker; waiting for it to stop (the persistent '
            'workers serve one pass at a time)',
            logger='current',
            level=logging.WARNING,
        )
        thread.join()
    else:
        print_log(
            f'SlotDataLoader: the gathering thread did not stop within {CLOSE_WAIT_S:.0f} s '
            '(a data worker is still loading); left running',
            logger='current',
            level=logging.WARNING,
        )


class _SlotIterator:
    """One pass: the workers' iterator, started here (so that the sampler is drawn before
    this returns: a resume's ``fast_forward`` then acts on the next pass, not this one),
    and a thread that draws the workers' parts of each batch, restores slot order and has
    the batch collated by one of ``threads`` threads (at most ``depth`` batches ahead).
    Dropping it stops the thread; once its loader starts another pass or is closed, a call
    raises ``PassClosedError``."""

    def __init__(
        self,
        loader: 'SlotDataLoader',
        depth: int = SLOT_QUEUE_DEPTH,
        threads: int = SLOT_COLLATE_THREADS,
    ):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self._error: BaseException | None = None
        settings = _PassSettings(
            loader.collate_fn, loader.pin_device, loader.owners, loader.batch_size
        )
        parts = iter(loader.parts)
        self.thread = threading.Thread(
            target=_fill,
            args=(settings, parts, self._queue, self.stop, threads),
            name='slot-gather',
            daemon=True,
        )
        self.thread.start()

    def __iter__(self):
        return self

    def __next__(self):
        if self._error is not None:
            raise self._error  # every later call fails too
        item = self._get()
        if isinstance(item, _End):
            self._queue.put(item)  # every later call ends too
            raise StopIteration
        try:
            if isinstance(item, _Failure):
                raise item.error
            return item.result()  # the future of a batch's collation
        except BaseException as error:
            self._error = error
            self.stop.set()
            raise

    def _get(self):
        # Polled: a pass stopped from outside queues nothing more.
        while not self.stop.is_set():
            try:
                return self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
        raise PassClosedError(
            'SlotDataLoader: this pass was stopped (its loader started another pass or was '
            'closed); iterate the loader again'
        )

    def __del__(self):
        self.stop.set()


class SlotDataLoader:
    """Batches of a slot sampler (module docstring), iterable like the ``DataLoader`` it
    replaces: ``dataset``, ``sampler`` (the slot sampler: ``set_epoch`` and
    ``fast_forward`` act on it), ``batch_size``, ``num_workers`` (those used), ``len()`` in
    batches.

    Args:
        loader: the Runner's ``DataLoader`` over a sampler that yields batches slot by slot
            (``SequentialGroupSampler``), with ``num_workers >= 1``; its dataset, sampler,
            collate function, worker set-up and pinning are kept.
    """

    def __init__(self, loader: DataLoader):
        if loader.num_workers < 1 or loader.batch_size is None:
            raise ValueError('SlotDataLoader: the loader needs workers and a batch size')
        self.dataset = loader.dataset
        self.sampler = loader.sampler
        self.batch_size = loader.batch_size
        self.collate_fn: Callable = loader.collate_fn
        # The device whose context pins the batches (the training process's current one).
        self.pin_device = (
            torch.cuda.current_device() if loader.pin_memory and torch.cuda.is_available() else None
        )
        self.owners = slot_owners(self.batch_size, loader.num_workers)
        self.num_workers = len(self.owners)
        extra = {}
        if loader.multiprocessing_context is not None:
            extra['multiprocessing_context'] = loader.multiprocessing_context
        # Round-robin dispatch with results in order, which owning relies on (and checks).
        if 'in_order' in inspect.signature(DataLoader).parameters:
            extra['in_order'] = True
        self.parts = DataLoader(
            self.dataset,
            batch_sampler=SlotChunks(self.sampler, self.batch_size, self.owners),
            collate_fn=_tagged,
            num_workers=self.num_workers,
            worker_init_fn=loader.worker_init_fn,
            persistent_workers=loader.persistent_workers,
            prefetch_factor=loader.prefetch_factor,
            timeout=loader.timeout,
            generator=loader.generator,
            **extra,
        )
        # The current pass's thread and its stop, not the pass itself (which its user owns:
        # dropping it stops the thread).
        self._gathering: tuple[threading.Thread, threading.Event] | None = None

    def __iter__(self) -> _SlotIterator:
        # One pass at a time: persistent workers serve one torch iterator, which a new
        # pass resets (mmengine's loop and a resume start a new pass before the old ends).
        self.close()
        current = _SlotIterator(self)
        self._gathering = current.thread, current.stop
        return current

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size

    def close(self) -> None:
        """Stop the current pass's thread (its workers stop with it unless persistent)."""
        if self._gathering is not None:
            _stop_gathering(*self._gathering, until_stopped=self.parts.persistent_workers)
            self._gathering = None

    def describe(self) -> str:
        low, high = min(map(len, self.owners)), max(map(len, self.owners))
        owned = str(low) if low == high else f'{low}-{high}'
        return (
            f'{self.num_workers} data workers each own {owned} of the {self.batch_size} batch '
            'slots (their reads of a sequence follow its frames)'
        )


def reads_videos(dataset, indices=None) -> bool:
    """Whether any of the samples ``indices`` (default: all) reads a camera's RGB from a
    video (its ``img_key`` an mp4 frame index, as ``FrameCache.rgb`` reads it), looked at
    until the first video: a training set may mix h5 and mp4 scenes (the evaluation
    protocol's layouts alternate them), and its first scene may be h5."""
    get_data_info = getattr(dataset, 'get_data_info', None)
    if get_data_info is None:
        return False
    for index in range(len(dataset)) if indices is None else indices:
        cams = get_data_info(index).get('cams') or {}
        if any(is_video_frame_key(cam.get('img_key')) for cam in cams.values()):
            return True
    return False


def first_of_each_sequence(sampler) -> list[int] | None:
    """One sample per sub-sequence of a sequence sampler, standing for its scene (a scene
    is read from one format); None where the sampler has no sequences."""
    return [sequence[0] for sequence in getattr(sampler, 'sequences', None) or []] or None


def with_slot_workers(dataloader, mode='auto'):
    """``dataloader`` as a ``SlotDataLoader`` when ``mode`` asks for it (module docstring),
    else unchanged; the choice is logged.

    ``mode``: True (whenever the sampler walks batch slots and there are 2 or more workers
    and slots), False (never), or 'auto' (as True when the samples read videos: h5 reads
    gain nothing from it, and with fewer workers than the batch's slots none idles).
    """
    if mode not in SLOT_WORKER_MODES:
        raise ValueError(f'slot_workers must be one of {SLOT_WORKER_MODES}, got {mode!r}')
    sampler = getattr(dataloader, 'sampler', None)
    batch_size = getattr(dataloader, 'batch_size', None) or 0
    eligible = (
        getattr(sampler, 'walks_slots', False)
        and getattr(sampler, 'batch_size', None) == batch_size
    )
    if not eligible or mode is False:
        return dataloader
    if min(getattr(dataloader, 'num_workers', 0), batch_size) < 2:
        # One worker reads in order already; fewer slots than workers would idle the rest.
        print_log(
            f'slot_workers={mode}: left off, {dataloader.num_workers} data workers for batch '
            f'{batch_size} (needs 2 or more of each)',
            logger='current',
        )
        return dataloader
    if mode == 'auto' and not reads_videos(dataloader.dataset, first_of_each_sequence(sampler)):
        print_log(
            'slot_workers=auto: the training samples read no videos, so batches go to the '
            'data workers in turn',
            logger='current',
        )
        return dataloader
    slot_loader = SlotDataLoader(dataloader)
    print_log(f'slot_workers={mode}: {slot_loader.describe()}', logger='current')
    return slot_loader
