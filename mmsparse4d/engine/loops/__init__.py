"""Training loops (registered in ``LOOPS``)."""

from .fast_resume_train_loop import FastResumeIterBasedTrainLoop, fast_forward

__all__ = ['FastResumeIterBasedTrainLoop', 'fast_forward']
