"""Test a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out F]``."""

from mmsparse4d.engine.cli import test_main

if __name__ == '__main__':
    test_main()
