"""Plot the training loss from an mmengine ``vis_data/scalars.json`` (LocalVisBackend).

python tools/analysis_tools/plot_learning_curve.py scalars.json [...] curve.png [--title T] \
    [--without loss_id loss_visibility] [--samples-per-step 16 64 ...]

``--without`` plots the total less the named terms (where a run logs them), so that runs
whose totals hold different terms are compared on the terms they share.
``--samples-per-step`` (one batch size per file) plots against the samples seen instead of
the iteration, so that runs at different batch sizes are compared on the same data.
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from mmsparse4d.utils.input_error import InputError, run_tool


def read_scalars(path: Path) -> list[dict]:
    """The JSON lines of a ``scalars.json``; a line that is not JSON is refused by number."""
    if not path.is_file():
        raise InputError('not found', path=path)
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise InputError(f'not JSON ({error.msg})', path=path, line=number) from None
    return rows


def loss_curve(rows: list[dict], without=()) -> tuple[list[int], list[float]]:
    """Steps and the total loss less the terms ``without`` of the training rows; a resumed
    run logs again from its last checkpoint, and the later row of a step wins."""
    by_step = {
        row['step']: row['loss'] - sum(row.get(term, 0.0) for term in without)
        for row in rows
        if 'loss' in row and 'step' in row
    }
    steps = sorted(by_step)
    return steps, [by_step[step] for step in steps]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('scalars', type=Path, nargs='+', help='one or more scalars.json')
    parser.add_argument('out', type=Path)
    parser.add_argument('--title', default='')
    parser.add_argument(
        '--without', nargs='+', default=[], metavar='TERM', help='loss terms left out of the total'
    )
    parser.add_argument(
        '--samples-per-step',
        nargs='+',
        type=int,
        metavar='N',
        help="each file's batch size: plot against the samples seen",
    )
    args = parser.parse_args(argv)
    per_step = args.samples_per_step
    if per_step is not None:
        if len(per_step) != len(args.scalars):
            raise InputError(
                f'--samples-per-step: {len(per_step)} batch sizes for {len(args.scalars)} files '
                '(one per file)'
            )
        if min(per_step) < 1:
            raise InputError(f'--samples-per-step: batch sizes must be >= 1, got {per_step}')
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for index, path in enumerate(args.scalars):
        steps, losses = loss_curve(read_scalars(path), args.without)
        if not steps:
            raise InputError("no training loss (no line with 'loss' and 'step')", path=path)
        if per_step is not None:
            steps = [step * per_step[index] for step in steps]
        ax.plot(steps, losses, label=path.parent.name)
    ax.set_xlabel('samples seen' if per_step is not None else 'iteration')
    ax.set_ylabel(f'total loss without {", ".join(args.without)}' if args.without else 'total loss')
    ax.grid(alpha=0.3)
    ax.set_title(args.title)
    if len(args.scalars) > 1:
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(args.out)


if __name__ == '__main__':
    run_tool('plot_learning_curve', main)
