"""Whether a config's model trains on several processes as on one at the same global batch.

    python tools/analysis_tools/check_data_parallel.py CONFIG [--processes 2] [--steps 3]
        [--cfg-options k=v ...]

Runs ``--steps`` SGD steps of the config's model on the CPU from one set of random weights,
once in one process at a batch of four samples and once in ``--processes`` processes (gloo,
``MMDistributedDataParallel``, as ``tools/dist_train.sh`` runs it) at an equal share each,
on the same random batches with the model's own random draws turned off
(``mmsparse4d/testing/distributed_equivalence.py`` says which). Prints every loss of every
step both ways and the parameter whose gradient differs most, against the float32 rounding
bound; exits 1 where a difference exceeds it. A loss that averages over each process's own
part of the batch (a count of targets, pixels, rows) instead of the global batch shows up
here: a model with a custom loss should pass before it trains on several GPUs.
"""

import argparse
import sys

from mmengine.config import Config, DictAction

from mmsparse4d.testing.distributed_equivalence import (
    BATCH_CAMERAS,
    compare_one_and_several_processes,
    deterministic_config,
    largest_differences,
    relative_tolerance,
)
from mmsparse4d.utils.input_error import InputError, run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--processes', type=int, default=2)
    parser.add_argument('--steps', type=int, default=3)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(argv)
    if args.processes < 2 or len(BATCH_CAMERAS) % args.processes:
        raise InputError(
            f'--processes {args.processes}: must be 2 or more and divide the batch of '
            f'{len(BATCH_CAMERAS)} samples'
        )
    if args.steps < 1:
        raise InputError(f'--steps {args.steps}: must be >= 1')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        cfg = Config.fromfile(args.config)
    except FileNotFoundError as error:
        raise InputError('no such config', path=args.config) from error
    cfg.merge_from_dict(args.cfg_options)
    one, several, model = compare_one_and_several_processes(cfg, args.processes, args.steps)
    size = tuple(deterministic_config(cfg).get('image_size', (256, 144)))
    tolerance = relative_tolerance(model, size)
    label = f'{args.processes} processes'
    print(f'one process at batch {len(BATCH_CAMERAS)} against {label} (the mean of theirs)')
    print(f'allowed relative difference (float32 rounding): {tolerance:.2e}')
    failed = False
    for step, row in enumerate(largest_differences(one, several)):
        print(f'\nstep {step}\n{"loss":<22} {"one process":>12} {label:>12} {"rel. diff":>10}')
        for name, (alone, mean, difference) in row['losses'].items():
            mark = '' if difference <= tolerance else '  EXCEEDS'
            failed |= bool(mark)
            print(f'{name:<22} {alone:>12.6f} {mean:>12.6f} {difference:>10.2e}{mark}')
        parameter, difference = row['gradient']
        mark = '' if difference <= tolerance else '  EXCEEDS'
        failed |= bool(mark)
        print(f'largest gradient difference: {difference:.2e} of its largest value', end='')
        print(f' ({parameter}){mark}')
    print('\n' + ('DIFFERENT: see EXCEEDS above' if failed else 'the same training'))
    if failed:
        sys.exit(1)


if __name__ == '__main__':
    run_tool('check_data_parallel', main)
