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
    for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
              'MASTER_PORT'):
        env.pop(k, None)
    return env


def start(args, cwd) -> subprocess.Popen:
    """Run ``python *args``; a new session lets a timeout kill the tree."""
    return subprocess.Popen([sys.executable] + list(args), cwd=cwd,
                            env=tool_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


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


def assert_same_state(a, b) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
