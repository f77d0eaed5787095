"""Importing fdseg changes nothing outside fdseg (issue 10).

The mmengine config patch, the ``fdseg-trusted://`` checkpoint scheme and
``YOLO_OFFLINE`` are set up where they are needed (config loading, the
runner, the FastSAM refiner's ``load()``), never at import.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

# Third-party packages fdseg imports are imported first: handlers they
# register at import are theirs, not fdseg's. atexit.register records the
# module of each function registered (fdseg's must be none).
_CODE = r"""
import atexit, json, os, signal
seen = []
register = atexit.register
def record(func, *args, **kwargs):
    seen.append(getattr(func, '__module__', None) or '')
    return register(func, *args, **kwargs)
atexit.register = record
import cv2, mmcv, mmengine, mmengine.config.config as cfg_mod, numpy, torch
import mmengine.runner
from mmengine.runner.checkpoint import CheckpointLoader
before = dict(is_installed=cfg_mod.is_installed,
              get_installed_path=cfg_mod.get_installed_path)
n_atexit = atexit._ncallbacks()
import fdseg, fdseg.models, fdseg.datasets, fdseg.engine, fdseg.apis
import fdseg.evaluation, fdseg.visualization, fdseg.utils
print(json.dumps(dict(
    yolo='YOLO_OFFLINE' in os.environ,
    patched=[k for k, v in before.items() if getattr(cfg_mod, k) is not v]
    + (['_fdseg_patched'] if hasattr(cfg_mod, '_fdseg_patched') else []),
    schemes=[p for p in CheckpointLoader._schemes if 'fdseg' in p],
    new_atexit=atexit._ncallbacks() - n_atexit)))
"""


# The documented set-up calls, after the import state was printed: the
# registries (still no atexit hook or signal handler of fdseg's), then the
# trusted checkpoint scheme.
_SETUP = r"""
from fdseg.engine.checkpoint import TRUSTED_PREFIX, register_trusted_scheme
import fdseg.engine.hooks
fdseg.utils.register_all_modules()
print(json.dumps(dict(
    fdseg_atexit=[m for m in seen if m.startswith('fdseg')],
    sigterm_default=signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)))
register_trusted_scheme()
print(json.dumps(dict(
    patched=hasattr(cfg_mod, '_fdseg_patched'),
    scheme=TRUSTED_PREFIX in CheckpointLoader._schemes)))
"""


@pytest.fixture(scope='module')
def states():
    """One fresh interpreter: the state after ``import fdseg``, after
    ``register_all_modules()``, after the set-up calls (one line each)."""
    env = {k: v for k, v in os.environ.items() if k != 'YOLO_OFFLINE'}
    proc = subprocess.run(
        [sys.executable, '-c', _CODE + _SETUP],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(x) for x in proc.stdout.strip().splitlines()[-3:]]


def test_import_has_no_side_effects(states):
    assert states[0] == dict(yolo=False, patched=[], schemes=[], new_atexit=0)


def test_import_installs_no_atexit_hook_or_signal_handler(states):
    """Nor does filling the registries (the writers' handlers exist only
    while a run stages its output: test_writers)."""
    assert states[1] == dict(fdseg_atexit=[], sigterm_default=True)


def test_setup_is_explicit(states):
    """The same state appears once the documented calls are made."""
    assert states[2] == dict(patched=True, scheme=True)
