"""Train a model from a config: ``python tools/train.py CONFIG [--work-dir DIR] [--amp]``."""

from mmsparse4d.engine.cli import train_main
from mmsparse4d.utils.input_error import run_tool

if __name__ == '__main__':
    run_tool('train', train_main)
