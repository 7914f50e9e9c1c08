"""Plain-text tables of metric summaries, logged by the metrics and printed by tools."""

from collections.abc import Mapping, Sequence


def format_table(
    title: str,
    rows: Mapping[str, Mapping[str, float]],
    columns: Sequence[str],
    decimals: int = 3,
) -> str:
    """One row per key, one column per metric, numbers with ``decimals`` decimals."""
    width = max([len(title), *(len(str(k)) for k in rows)]) + 2
    cell = max([10, *(len(c) + 2 for c in columns)])
    header = title.ljust(width) + ''.join(c.rjust(cell) for c in columns)
    lines = [header, '-' * len(header)]
    for key, values in rows.items():
        cells = ''.join(
            (f'{values[c]:.{decimals}f}' if isinstance(values.get(c), (int, float)) else '-').rjust(
                cell
            )
            for c in columns
        )
        lines.append(str(key).ljust(width) + cells)
    return '\n'.join(lines)
