"""tools/analysis_tools/compare_msda_kernels.py: variants and cases read and refused before
anything is built, the table's arithmetic, and real nvcc builds (needs nvcc; the runs need a
CUDA device)."""

import shutil
import subprocess
import sys

import pytest

from mmsparse4d.utils.input_error import InputError
from tests.conftest import REPO_ROOT

TOOL = REPO_ROOT / 'tools/analysis_tools/compare_msda_kernels.py'
KERNELS = REPO_ROOT / 'ops/csrc/cuda/msda_kernels.cu'

sys.path.insert(0, str(TOOL.parent))
import compare_msda_kernels as tool  # noqa: E402

# A row exactly as msda_kernel_timing prints it.
FORWARD_ROW = (
    '| forward | fp16 | B=1, 10 cameras, A=900, C=256, G=8 | vector 8 | 0.0833 ms | '
    'max error 1.53e-05 |'
)
BACKWARD_ROW = (
    '| backward | bf16 | B=16, 6 cameras, A=400, C=96, G=4 | vector 4 | 0.6790 ms | '
    'sum |grad|: features 1.234567e+03, location 2.5e+01, weights 3.0e+00 |'
)


def test_a_variant_names_its_source_and_definitions(tmp_path):
    assert tool.parse_variant('today') == tool.Variant('today', KERNELS, ())
    parent = tmp_path / 'parent.cu'
    parent.write_text('// another commit\n')
    variant = tool.parse_variant(f'parent={parent}:-DMSDA_DEPTH=3 -DMSDA_HALF_BLEND')
    assert variant == tool.Variant('parent', parent, ('-DMSDA_DEPTH=3', '-DMSDA_HALF_BLEND'))
    command = tool.build_command(variant, 'sm_90', tmp_path / 'parent')
    assert command[:2] == ['nvcc', '-arch=sm_90']
    assert f'-DKERNELS="{parent}"' in command
    assert command.index('-DMSDA_DEPTH=3') < command.index(str(tool.TIMING_SOURCE))


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (['--variant', 'a b'], "--variant 'a b': NAME must start with a letter or digit"),
        (['--variant', '..'], "--variant '..': NAME must start"),
        (['--variant', 'old=/no/such/kernels.cu'], "--variant old: no kernels file '/no/such"),
        (['--variant', 'x:-O0'], "--variant x: '-O0' is not -DNAME or -DNAME=VALUE"),
        (['--variant', 'x:-DA;rm'], "--variant x: '-DA;rm' is not -DNAME"),
        (['--variant', 'a', '--variant', 'a:-DB'], '--variant: names must differ, got a a'),
        (['--variant', 'a', '--case', 'forward fp64'], "--case 'forward fp64': 'forward DTYPE"),
        (['--variant', 'a', '--case', 'forward fp16 0'], "--case 'forward fp16 0': a forward"),
        (['--variant', 'a', '--case', 'backward fp16 small'], "--case 'backward fp16 small'"),
        (
            ['--variant', 'a', '--case', 'forward fp16 \u00b2'],
            "--case 'forward fp16 \u00b2': a forward",
        ),
        (['--variant', 'a', '--case', 'backward bf16 16 6'], "--case 'backward bf16 16 6': G = 4"),
        (
            ['--variant', 'a', '--case', 'backward bf16 2 64 3'],
            "--case 'backward bf16 2 64 3': G = 3",
        ),
        (['--variant', 'a', '--case', 'forward fp16', '--case', 'forward  fp16'], '--case: each'),
        (['--variant', 'a', '--timeout', 'nan'], '--rounds must be >= 1 and --timeout > 0'),
        (['--variant', 'a', '--rounds', '0'], '--rounds must be >= 1 and --timeout > 0, got 0'),
        (['--variant', 'a', '--arch', 'hopper'], "--arch 'hopper': an nvcc architecture"),
        (['--variant', 'a', '--nvcc', '/no/nvcc'], "--nvcc '/no/nvcc': not found"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_built(args, message, tmp_path):
    with pytest.raises(InputError) as refused:
        tool.main([*args, '--build-dir', str(tmp_path / 'bin')])
    assert str(refused.value).startswith(message)
    assert not (tmp_path / 'bin').exists()


def test_a_build_dir_that_is_a_file_is_refused(tmp_path):
    taken = tmp_path / 'taken'
    taken.write_text('not a folder\n')
    with pytest.raises(InputError, match=f'--build-dir {taken}: File exists'):
        tool.main(['--variant', 'a', '--nvcc', sys.executable, '--build-dir', str(taken)])


def test_rows_are_read_and_tabled_against_the_first_variant():
    assert tool.parse_row('building...\n' + FORWARD_ROW + '\n') == (0.0833, 'max error 1.53e-05')
    ms, check = tool.parse_row(BACKWARD_ROW)
    assert ms == 0.679 and check.startswith('sum |grad|: features 1.234567e+03')
    assert tool.markdown_cell(check) == check.replace('|', '\\|')  # bars escaped in the table
    with pytest.raises(ValueError, match='no timing row'):
        tool.parse_row('msda_kernel_timing: out of memory\n')
    variants = [tool.Variant('base', KERNELS, ()), tool.Variant('new', KERNELS, ('-DX',))]
    key = 'forward fp16 10'
    times = {(key, 'base'): [0.0833, 0.0829, 0.0831], (key, 'new'): [0.0750, 0.0760, 0.0740]}
    checks = {(key, 'base'): ['max error 1.53e-05'], (key, 'new'): ['max error 2.0e-05']}
    rows = tool.table([key.split()], variants, times, checks)
    assert rows[0].startswith('| case | variant | ms, each round | median ms | vs base |')
    assert rows[2] == (
        '| forward fp16 10 | base | 0.0833, 0.0829, 0.0831 | 0.0831 | 1.000x | max error 1.53e-05 |'
    )
    assert rows[3] == (
        '| forward fp16 10 | new | 0.0750, 0.0760, 0.0740 | 0.0750 | 0.903x | max error 2.0e-05 |'
    )


def cuda_device_present() -> bool:
    if shutil.which('nvidia-smi') is None:
        return False
    return subprocess.run(['nvidia-smi', '-L'], capture_output=True).returncode == 0


def run_cli(*args) -> subprocess.CompletedProcess:
    """The tool in its own process, as a user runs it."""
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, timeout=900
    )


def flag_checked_source(tmp_path):
    """The tree's kernels behind a guard that fails the build unless -DFLAG_REACHED is set."""
    source = tmp_path / 'guarded.cu'
    source.write_text(
        '#ifndef FLAG_REACHED\n#error "the variant flags did not reach the kernels"\n#endif\n'
        '#include "msda_kernels.cu"\n'
    )
    return source


@pytest.mark.slow
@pytest.mark.skipif(shutil.which('nvcc') is None, reason='needs nvcc (the CUDA toolkit)')
def test_a_variant_without_its_flag_is_refused_with_nvcc_s_error(tmp_path):
    done = run_cli(
        '--variant', f'guarded={flag_checked_source(tmp_path)}', '--build-dir', tmp_path / 'bin'
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        'compare_msda_kernels: --variant guarded: nvcc failed: '
    )
    assert 'the variant flags did not reach the kernels' in lines[0]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which('nvcc') is None, reason='needs nvcc (the CUDA toolkit)')
def test_variants_build_with_nvcc_and_a_missing_device_is_one_line(tmp_path):
    # The fp16 forward without its half2 blend builds; the guarded source only with its flag.
    done = run_cli(
        *('--variant', 'today', '--variant', 'fp32sums:-DMSDA_HALF_BLEND=0'),
        *('--variant', f'guarded={flag_checked_source(tmp_path)}:-DFLAG_REACHED'),
        *('--case', 'forward fp16 2', '--rounds', 1, '--build-dir', tmp_path / 'bin'),
    )
    built = [tmp_path / 'bin' / name for name in ('today', 'fp32sums', 'guarded')]
    assert all(binary.is_file() for binary in built), done.stderr
    if cuda_device_present():
        assert done.returncode == 0, done.stderr
        assert '| forward fp16 2 | fp32sums |' in done.stdout
    else:
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith('compare_msda_kernels: variant today, case forward fp16 2: exit')


@pytest.mark.gpu
@pytest.mark.skipif(shutil.which('nvcc') is None, reason='needs nvcc (the CUDA toolkit)')
def test_two_builds_of_one_source_time_alike_and_check_alike(tmp_path):
    done = run_cli(
        *('--variant', 'a', '--variant', 'b'),
        *('--case', 'forward fp16 4', '--case', 'backward fp32 2 64 4'),
        *('--rounds', 2, '--build-dir', tmp_path),
    )
    assert done.returncode == 0, done.stderr
    # Cells are split on ' | ': the backward's check escapes its own bars ('sum \\|grad\\|').
    rows = [
        line[2:-2].split(' | ')
        for line in done.stdout.splitlines()
        if line.startswith('| ') and not line.startswith('| case |')
    ]
    assert [row[:2] for row in rows] == [
        ['forward fp16 4', 'a'],
        ['forward fp16 4', 'b'],
        ['backward fp32 2 64 4', 'a'],
        ['backward fp32 2 64 4', 'b'],
    ]
    assert rows[0][5] == rows[1][5] and rows[2][5] == rows[3][5]  # the same kernels' checks
