"""Test a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out F]``."""

from mmsparse4d.engine.cli import test_main
from mmsparse4d.utils.input_error import run_tool

if __name__ == '__main__':
    run_tool('test', test_main)
