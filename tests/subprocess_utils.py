"""Helpers for tests that run fdseg's tools in subprocesses (torchrun too)."""

import os
import signal
import socket
import subprocess
import sys

import pytest
import torch


def tool_env() -> dict:
    """A clean environment: no inherited rank variables, one OMP thread."""
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)  # the tools must find fdseg on their own
    env.update(OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
        env.pop(k, None)
    return env


def start(args, cwd, env=None) -> subprocess.Popen:
    """Run ``python *args``; a new session lets a timeout kill the tree.

    ``env`` entries are added to :func:`tool_env`.
    """
    return subprocess.Popen(
        [sys.executable] + list(args),
        cwd=cwd,
        env={**tool_env(), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish(proc, timeout):
    """Wait for ``proc``; returns ``(returncode, output)``."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f'timed out after {timeout}s:\n{out[-4000:]}')
    return proc.returncode, out


def finish_ok(proc, timeout=180) -> str:
    """Wait for ``proc`` and require exit status 0; returns the output."""
    code, out = finish(proc, timeout)
    assert code == 0, f'exit status {code}:\n{out[-6000:]}'
    return out


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def torchrun_train(config, work_dir, nproc=2) -> list:
    """Arguments for ``python`` running ``tools/train.py`` under torchrun.

    Two CPU processes on this machine (gloo), a free port each call.
    """
    tools = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tools'
    )
    return [
        '-m',
        'torch.distributed.run',
        '--nnodes=1',
        f'--nproc_per_node={nproc}',
        '--master_addr=127.0.0.1',
        f'--master_port={free_port()}',
        os.path.join(tools, 'train.py'),
        str(config),
        '--launcher',
        'pytorch',
        '--work-dir',
        str(work_dir),
    ]


def assert_same_state(a, b) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def run_pool(jobs, width=2, timeout=600):
    """Run ``{key: (args, cwd, env)}`` with at most ``width`` at a time.

    Output goes to temporary files (a pipe nobody reads would fill up and
    block a chatty child).

    Returns:
        dict: ``{key: (returncode, output)}``.
    """
    import tempfile
    import time

    pending, running, done = list(jobs.items()), {}, {}
    deadline = time.monotonic() + timeout
    while pending or running:
        while pending and len(running) < width:
            key, (args, cwd, env) = pending.pop(0)
            log = tempfile.TemporaryFile('w+')
            proc = subprocess.Popen(
                [sys.executable] + list(args),
                cwd=cwd,
                env={**tool_env(), **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            running[key] = (proc, log)
        for key, (proc, log) in list(running.items()):
            if proc.poll() is not None:
                log.seek(0)
                done[key] = (proc.returncode, log.read())
                log.close()
                del running[key]
        if time.monotonic() > deadline:
            for proc, _ in running.values():
                os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f'timed out after {timeout}s: {list(running)}')
        time.sleep(0.1)
    return done


def tool_main(name, argv):
    """Call ``tools/<name>.py``'s ``main(argv)`` in this process.

    For the refusal cases of a tool (argument, config and checkpoint
    checks): the same code path as the command without the ~5 s start of a
    Python process. Each tool keeps one subprocess test of its exit status
    (no traceback). What a run changes in this process (environment
    variables, random states, thread counts, the global instances a runner
    makes: loggers with their open files, message hub, visualizer, default
    scope) is put back afterwards.

    Returns:
        What ``main`` returns; its exceptions propagate.
    """
    import importlib.util
    import random

    import cv2
    import numpy as np
    from mmengine.logging import MessageHub, MMLogger
    from mmengine.registry import DefaultScope
    from mmengine.visualization import Visualizer

    path = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        'tools',
        f'{name}.py',
    )
    spec = importlib.util.spec_from_file_location(f'fdseg_tool_{name}', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    env = dict(os.environ)
    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    threads = (torch.get_num_threads(), cv2.getNumThreads())
    visualizers = [Visualizer] + _subclasses(Visualizer)
    before = {
        cls: set(cls._instance_dict) for cls in (MMLogger, MessageHub, DefaultScope)
    }
    # A runner asks for its visualizer by the config's name ('visualizer'):
    # one left by an earlier run in this process would be reused, writing
    # into that run's folder. Set aside during the call.
    aside = {cls: dict(cls._instance_dict) for cls in visualizers}
    for cls in visualizers:
        cls._instance_dict.clear()
    try:
        return mod.main(list(argv))
    finally:
        os.environ.clear()
        os.environ.update(env)
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        torch.set_num_threads(threads[0])
        cv2.setNumThreads(threads[1])
        for cls in (MMLogger, MessageHub, DefaultScope):
            for key in set(cls._instance_dict) - before[cls]:
                obj = cls._instance_dict.pop(key)
                for handler in list(getattr(obj, 'handlers', [])):
                    handler.close()  # an MMLogger's log file
                    obj.removeHandler(handler)
        for cls in set(visualizers + _subclasses(Visualizer)):
            cls._instance_dict.clear()
            cls._instance_dict.update(aside.get(cls, {}))


def _subclasses(cls):
    found = []
    for sub in cls.__subclasses__():
        found += [sub] + _subclasses(sub)
    return found
