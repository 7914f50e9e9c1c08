"""mmsparse4d/utils/distributed_end.py: a single process has nothing to wait for; the exit
keeps what was printed and logged and reports success."""

import subprocess
import sys

from mmsparse4d.utils.distributed_end import wait_for_other_processes
from tests.conftest import REPO_ROOT


def test_a_single_process_has_no_one_to_wait_for():
    assert wait_for_other_processes() is False


def test_the_exit_flushes_stdout_stderr_and_logs_and_reports_success(tmp_path):
    log = tmp_path / 'run.log'
    program = f"""
import logging, sys
from mmsparse4d.utils.distributed_end import exit_distributed_process
logging.basicConfig(filename={str(log)!r}, level=logging.INFO)
logging.info('logged line')
print('printed without a newline', end='')
sys.stderr.write('error stream')
exit_distributed_process()
print('never reached')
"""
    done = subprocess.run(
        [sys.executable, '-c', program], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert done.returncode == 0
    assert done.stdout == 'printed without a newline'
    assert done.stderr == 'error stream'
    assert 'logged line' in log.read_text()
