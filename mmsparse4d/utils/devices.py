"""The tools' ``--device`` argument, checked before any work."""

from .input_error import InputError


def check_device(device: str, argument: str = '--device') -> None:
    """Refuse a CUDA device on a machine without one (``InputError``, one line)."""
    if str(device).startswith('cuda'):
        import torch  # here: some tools that take --device start without torch

        if not torch.cuda.is_available():
            raise InputError(f'{argument} {device}: no CUDA device is available; use --device cpu')
