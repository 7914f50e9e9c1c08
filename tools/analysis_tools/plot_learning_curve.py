"""Plot the training loss from an mmengine ``vis_data/scalars.json`` (LocalVisBackend).

python tools/analysis_tools/plot_learning_curve.py scalars.json curve.png [--title T]
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('scalars', type=Path, nargs='+', help='one or more scalars.json')
    parser.add_argument('out', type=Path)
    parser.add_argument('--title', default='')
    args = parser.parse_args(argv)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for path in args.scalars:
        train = [row for row in read_scalars(path) if 'loss' in row and 'step' in row]
        if not train:
            raise InputError("no training loss (no line with 'loss' and 'step')", path=path)
        # A resumed run logs again from its last checkpoint: the later row of a step wins.
        by_step = {row['step']: row['loss'] for row in train}
        steps = sorted(by_step)
        ax.plot(steps, [by_step[step] for step in steps], label=path.parent.name)
    ax.set_xlabel('iteration')
    ax.set_ylabel('total loss')
    ax.grid(alpha=0.3)
    ax.set_title(args.title)
    if len(args.scalars) > 1:
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(args.out)


if __name__ == '__main__':
    run_tool('plot_learning_curve', main)
