"""Train a model from a config: ``python tools/train.py CONFIG [--work-dir DIR] [--amp]``."""

from mmsparse4d.engine.cli import train_main

if __name__ == '__main__':
    train_main()
