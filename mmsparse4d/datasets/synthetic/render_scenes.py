"""Render a set of protocol scenes in parallel, each by its own ``tools/make_synthetic.py``
process, keeping those already rendered with the same generator and arguments."""

import shutil
import subprocess
import sys
from pathlib import Path

from ...utils.input_error import InputError
from ...utils.pyav import import_pyav
from .generator_stamp import generator_stamp, is_current, write_stamp
from .protocol import SceneSpec

_REPO = Path(__file__).resolve().parents[3]


def make_arguments(spec: SceneSpec) -> list[str]:
    """``tools/make_synthetic.py`` arguments (after the folder) for ``spec``."""
    return [
        '--seed',
        str(spec.seed),
        '--cameras',
        str(spec.num_cameras),
        '--objects',
        str(spec.num_objects),
        '--frames',
        str(spec.num_frames),
        '--size',
        str(spec.width),
        str(spec.height),
        '--rgb-format',
        spec.rgb_format,
    ]


def render_scenes(specs: list[SceneSpec], raw: Path, workers: int) -> list[Path]:
    """Render into ``raw/<spec.name>`` the scenes not already there; returns every scene's
    folder in the order of ``specs``.

    At most ``workers`` scenes render at once; with fewer scenes than workers each scene
    gets several rendering processes. A scene's log is ``raw/<name>.log``; a failed scene
    raises, after the running ones end, ``InputError`` with ``tools/make_synthetic.py``'s
    one line where it refused its arguments (exit status 2), else ``RuntimeError`` with its
    log's tail.
    """
    if any(spec.rgb_format == 'mp4' for spec in specs):
        import_pyav('mp4 scenes')  # here, not in every scene's process after it started
    raw = Path(raw)
    raw.mkdir(parents=True, exist_ok=True)
    pending = []
    for spec in specs:
        stamp = generator_stamp(make_arguments(spec))
        if not is_current(raw / spec.name, stamp):
            pending.append((spec, stamp))
    if pending:
        per_scene = max(1, workers // len(pending))
        at_once = max(1, min(workers, len(pending)))
        print(
            f'rendering {len(pending)} scenes, {at_once} at a time with {per_scene} '
            'rendering processes each',
            flush=True,
        )
        queue, running, failed = list(pending), [], None
        while queue or running:
            while queue and len(running) < at_once:
                spec, stamp = queue.pop(0)
                running.append((spec, stamp, *_start(spec, raw, per_scene)))
            spec, stamp, process, log = running.pop(0)
            code = process.wait()
            log.close()
            if code:
                failed = failed or (spec, code)
                queue.clear()  # let the running scenes end, start no more
            else:
                write_stamp(raw / spec.name, stamp)
        if failed:
            spec, code = failed
            log = raw / f'{spec.name}.log'
            text = log.read_text()
            if code == 2 and text.strip():  # a refusal: the tool's last line says why
                last = text.strip().splitlines()[-1]
                raise InputError(f'make_synthetic.py, seed {spec.seed}: {last}', path=log)
            raise RuntimeError(f'make_synthetic.py failed for seed {spec.seed}:\n{text[-2000:]}')
    return [raw / spec.name for spec in specs]


def _start(spec: SceneSpec, raw: Path, processes: int):
    scene = raw / spec.name
    shutil.rmtree(scene, ignore_errors=True)
    command = [
        sys.executable,
        str(_REPO / 'tools/make_synthetic.py'),
        str(scene),
        *make_arguments(spec),
        '--workers',
        str(processes),
    ]
    log = open(raw / f'{spec.name}.log', 'w')
    return subprocess.Popen(command, stdout=log, stderr=log), log
