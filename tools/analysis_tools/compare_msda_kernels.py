"""Time MSDA kernel sources or build flags against each other, in one run, as one table.

Builds ``msda_kernel_timing.cu`` once per variant (nvcc, all variants at once), then runs
every case with every variant in turn, round after round, so that a drift of the GPU's
clocks falls on all variants alike. Prints, per case and variant, each round's time (the
timing tool's median of CUDA-event timings of queued calls), the median over the rounds, the
ratio to the first variant, and the tool's check: the largest error against the float64
reference for the forward, the sums of |gradient| for the backward (equal sums, equal
gradients); each time also goes to stderr as it is measured, so that a run cut off keeps
what it measured. Needs nvcc and a CUDA device; no torch.

    python tools/analysis_tools/compare_msda_kernels.py \\
        --variant today --variant fp32sums:-DMSDA_HALF_BLEND=0 \\
        --variant parent=/tmp/parent_kernels.cu \\
        --case 'forward fp16 10' --case 'forward fp16 20' --case 'backward bf16' --rounds 3

A variant is ``NAME[=SOURCE][:FLAGS]``: SOURCE a kernels file (default the tree's
``ops/csrc/cuda/msda_kernels.cu``; another commit's with
``git show REV:ops/csrc/cuda/msda_kernels.cu > FILE``), FLAGS the preprocessor
definitions it is built with (``-DNAME`` or ``-DNAME=VALUE``, space-separated). A case is
what ``msda_kernel_timing`` takes: ``forward DTYPE [CAMS | small]`` or
``backward DTYPE [BATCH [C [G]]]``, DTYPE fp32, fp16 or bf16.
"""

import argparse
import math
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from mmsparse4d.utils.input_error import InputError, run_tool

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMING_SOURCE = REPO_ROOT / 'tools/analysis_tools/msda_kernel_timing.cu'
KERNEL_DIR = REPO_ROOT / 'ops/csrc/cuda'
DEFAULT_SOURCE = KERNEL_DIR / 'msda_kernels.cu'
DTYPES = ('fp32', 'fp16', 'bf16')
NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]*')
COUNT = re.compile(r'[1-9][0-9]{0,5}')  # what msda_kernel_timing's atoi reads as meant
DEFINE = re.compile(r'-D[A-Za-z_][A-Za-z0-9_]*(=[^\s"\'\\]*)?')
# One row of msda_kernel_timing: '| forward | fp16 | ... | 0.0833 ms | max error 1.53e-05 |'.
ROW_TIME = re.compile(r'\| ([0-9.]+) ms \| (.*) \|\s*$')


@dataclass(frozen=True)
class Variant:
    name: str
    source: Path
    defines: tuple[str, ...]


def parse_variant(text: str) -> Variant:
    """``NAME[=SOURCE][:FLAGS]`` -> Variant; refuses what nvcc would not build as meant."""
    head, _, flags = text.partition(':')
    name, has_source, source = head.partition('=')
    if not NAME.fullmatch(name):
        raise InputError(
            f'--variant {text!r}: NAME must start with a letter or digit, then letters, digits,'
            f' _ . - (got {name!r})'
        )
    path = Path(source).expanduser().resolve() if has_source else DEFAULT_SOURCE
    if not path.is_file():
        raise InputError(f'--variant {name}: no kernels file {source!r}')
    defines = tuple(flags.split())
    for flag in defines:
        if not DEFINE.fullmatch(flag):
            raise InputError(f'--variant {name}: {flag!r} is not -DNAME or -DNAME=VALUE')
    return Variant(name, path, defines)


def parse_case(text: str) -> list[str]:
    """A case as msda_kernel_timing's arguments, checked before anything is built."""
    words = text.split()
    if len(words) < 2 or words[0] not in ('forward', 'backward') or words[1] not in DTYPES:
        raise InputError(
            f"--case {text!r}: 'forward DTYPE [CAMS | small]' or 'backward DTYPE [BATCH [C [G]]]'"
            f', DTYPE one of {", ".join(DTYPES)}'
        )
    rest = words[2:]
    if words[0] == 'forward':
        if len(rest) > 1 or (rest and rest[0] != 'small' and not _positive(rest[0])):
            raise InputError(f'--case {text!r}: a forward takes CAMS >= 1 or small')
    else:
        if len(rest) > 3 or not all(_positive(word) for word in rest):
            raise InputError(f'--case {text!r}: a backward takes BATCH, C and G, each >= 1')
        # msda_kernel_timing's defaults for what is left out: B = 16, C = 96, G = 4.
        channels, groups = ([int(word) for word in rest] + [16, 96, 4][len(rest) :])[1:]
        if channels % groups:
            raise InputError(f'--case {text!r}: G = {groups} must divide C = {channels}')
    return words


def _positive(word: str) -> bool:
    return COUNT.fullmatch(word) is not None


def build_command(variant: Variant, arch: str, binary: Path, nvcc: str = 'nvcc') -> list[str]:
    """nvcc's arguments for the timing tool over one variant's kernels."""
    return [
        nvcc,
        f'-arch={arch}',
        '-O3',
        '-std=c++20',
        '--expt-relaxed-constexpr',
        '-I',
        str(KERNEL_DIR),
        *variant.defines,
        f'-DKERNELS="{variant.source}"',
        str(TIMING_SOURCE),
        '-o',
        str(binary),
    ]


def parse_row(output: str) -> tuple[float, str]:
    """(ms, check) from the timing tool's output: its last table row."""
    rows = [line for line in output.splitlines() if line.startswith('|')]
    match = ROW_TIME.search(rows[-1]) if rows else None
    if match is None:
        raise ValueError(f'no timing row in {output.strip()[-200:]!r}')
    return float(match.group(1)), match.group(2).strip()


def build(variants: list[Variant], arch: str, nvcc: str, directory: Path) -> dict[str, Path]:
    def one(variant):
        binary = directory / variant.name
        done = subprocess.run(
            build_command(variant, arch, binary, nvcc), capture_output=True, text=True
        )
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if 'error' in line]
            first = errors[0] if errors else done.stderr.strip()[-300:]
            raise InputError(f'--variant {variant.name}: nvcc failed: {first}')
        return variant.name, binary

    with ThreadPoolExecutor(max_workers=len(variants)) as pool:
        return dict(pool.map(one, variants))


def run_case(binary: Path, case: list[str], variant: str, timeout: float) -> tuple[float, str]:
    try:
        done = subprocess.run([str(binary), *case], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise InputError(f'variant {variant}, case {" ".join(case)}: over {timeout:g} s') from error
    where = f'variant {variant}, case {" ".join(case)}'
    if done.returncode != 0:
        # The tool's own complaint, not the usage lines printed after it.
        lines = done.stderr.strip().splitlines() or ['']
        said = next((line for line in lines if line.startswith('msda_kernel_timing:')), lines[-1])
        raise InputError(f'{where}: exit {done.returncode}: {said}')
    try:
        return parse_row(done.stdout)
    except ValueError as error:
        raise InputError(f'{where}: {error}') from error


def markdown_cell(text: str) -> str:
    """A table cell's text with its bars escaped (the backward's check holds '|grad|')."""
    return text.replace('|', r'\|')


def table(cases, variants, times, checks) -> list[str]:
    """Markdown rows: per case and variant, each round, the median and the ratio to the first."""
    lines = [
        '| case | variant | ms, each round | median ms | vs ' + variants[0].name + ' | check |',
        '|---|---|---|---:|---:|---|',
    ]
    for case in cases:
        key = ' '.join(case)
        first = median(times[key, variants[0].name])
        for variant in variants:
            rounds = times[key, variant.name]
            mid = median(rounds)
            cells = ', '.join(f'{ms:.4f}' for ms in rounds)
            lines.append(
                f'| {key} | {variant.name} | {cells} | {mid:.4f} | {mid / first:.3f}x | '
                f'{markdown_cell(" / ".join(checks[key, variant.name]))} |'
            )
    return lines


def device_line(binary_dir: Path) -> str:
    gpu = 'unknown GPU'
    if shutil.which('nvidia-smi'):
        query = subprocess.run(
            ['nvidia-smi', '--query-gpu=name', '--format=csv,noheader'],
            capture_output=True,
            text=True,
        )
        gpu = query.stdout.strip().splitlines()[0] if query.stdout.strip() else gpu
    return f'device: {gpu}; binaries in {binary_dir}'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--variant',
        action='append',
        required=True,
        help='NAME[=SOURCE][:FLAGS]; the first is the one the others are compared with',
    )
    parser.add_argument(
        '--case',
        action='append',
        default=None,
        help="msda_kernel_timing's arguments (default: 'forward fp16 10', the benchmark shape)",
    )
    parser.add_argument('--rounds', type=int, default=3, help='runs of every case and variant')
    parser.add_argument('--arch', default='sm_90', help="nvcc's -arch (sm_90: H100, H200)")
    parser.add_argument('--nvcc', default='nvcc', help='the compiler')
    parser.add_argument('--timeout', type=float, default=120, help='seconds a run may take')
    parser.add_argument('--build-dir', default=None, help='where the binaries go (default: temp)')
    args = parser.parse_args(argv)
    variants = [parse_variant(text) for text in args.variant]
    names = [variant.name for variant in variants]
    if len(set(names)) != len(names):
        raise InputError(f'--variant: names must differ, got {" ".join(names)}')
    cases = [parse_case(text) for text in (args.case or ['forward fp16 10'])]
    keys = [' '.join(case) for case in cases]
    if len(set(keys)) != len(keys):
        raise InputError(f'--case: each case once, got {", ".join(keys)}')
    if args.rounds < 1 or not (math.isfinite(args.timeout) and args.timeout > 0):
        raise InputError(
            f'--rounds must be >= 1 and --timeout > 0, got {args.rounds} and {args.timeout}'
        )
    if not re.fullmatch(r'sm_\d+a?', args.arch):
        raise InputError(f'--arch {args.arch!r}: an nvcc architecture such as sm_90')
    if shutil.which(args.nvcc) is None:
        raise InputError(f'--nvcc {args.nvcc!r}: not found (the CUDA toolkit is needed)')
    directory = Path(args.build_dir or tempfile.mkdtemp(prefix='msda_variants_'))
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f'--build-dir {args.build_dir}: {error.strerror}') from error
    print(device_line(directory))
    for variant in variants:
        flags = ' '.join(variant.defines) or 'no flags'
        print(f'{variant.name}: {variant.source} ({flags})')
    print(flush=True)
    binaries = build(variants, args.arch, args.nvcc, directory)
    times: dict[tuple[str, str], list[float]] = {}
    checks: dict[tuple[str, str], list[str]] = {}
    for round_index in range(args.rounds):
        for case in cases:
            key = ' '.join(case)
            for variant in variants:
                ms, check = run_case(binaries[variant.name], case, variant.name, args.timeout)
                # Each time as it comes: a run cut off (a machine's time limit) keeps them.
                print(
                    f'round {round_index + 1}: {key}, {variant.name}: {ms:.4f} ms',
                    file=sys.stderr,
                    flush=True,
                )
                times.setdefault((key, variant.name), []).append(ms)
                seen = checks.setdefault((key, variant.name), [])
                if check not in seen:
                    seen.append(check)  # a check that differs between rounds shows both
    print('\n'.join(table(cases, variants, times, checks)))


if __name__ == '__main__':
    run_tool('compare_msda_kernels', main)
