"""Writing a generated dataset folder safely.

* :func:`staging_dir` - write into a temporary sibling folder that is renamed
  onto the target at the end, so an interrupted run never leaves a
  half-written folder behind;
* :func:`file_lock` - an exclusive ``fcntl.flock`` on ``<path>.lock``, so that
  several processes (e.g. distributed ranks on a shared filesystem) generate
  a folder once;
* :func:`imwrite_png` - a fast-compression PNG writer that raises on failure.
"""

import contextlib
import fcntl
import os
import os.path as osp
import secrets
import shutil
from typing import Iterator

import cv2
import numpy as np

_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1]  # fast; noise compresses poorly anyway


def imwrite_png(path: str, img: np.ndarray) -> None:
    """``cv2.imwrite`` with compression 1; raises ``OSError`` on failure."""
    if not cv2.imwrite(path, img, _PNG_PARAMS):
        raise OSError(f'could not write {path}')


def is_nonempty_dir(path: str) -> bool:
    """Whether ``path`` is a folder holding at least one entry."""
    return osp.isdir(path) and bool(os.listdir(path))


@contextlib.contextmanager
def staging_dir(out_dir: str, overwrite: bool) -> Iterator[str]:
    """Yield a temporary sibling of ``out_dir``; rename it there on success.

    The sibling lives on the same filesystem so the final rename is atomic.
    It is removed if the block fails or is interrupted.

    Args:
        out_dir (str): Absolute path of the folder to create.
        overwrite (bool): Replace an existing non-empty ``out_dir``
            (checked again at the end: another process may have written it
            meanwhile).

    Raises:
        FileExistsError: ``out_dir`` is not empty (or not a directory) at
            the end and ``overwrite`` is False.
    """
    parent, base = osp.split(out_dir)
    os.makedirs(parent, exist_ok=True)
    token = f'{os.getpid()}-{secrets.token_hex(4)}'
    # makedirs (unlike mkdtemp) honours the umask, so the result is not
    # mode 0700.
    tmp = osp.join(parent, f'.{base}.tmp-{token}')
    os.makedirs(tmp)
    try:
        yield tmp
        _move_into_place(tmp, out_dir, overwrite, token)
    finally:
        if osp.exists(tmp):  # failed or interrupted: leave nothing behind
            shutil.rmtree(tmp, ignore_errors=True)


def _move_into_place(tmp: str, out_dir: str, overwrite: bool, token: str) -> None:
    """Rename ``tmp`` to ``out_dir`` (replacing it when allowed)."""
    # Checked again: another process may have written out_dir meanwhile.
    if osp.isdir(out_dir) and not osp.islink(out_dir):
        if os.listdir(out_dir):
            if not overwrite:
                raise FileExistsError(
                    f'{out_dir} exists and is not empty; '
                    'pass overwrite=True (--overwrite) to '
                    'replace it'
                )
            parent, base = osp.split(out_dir)
            old = osp.join(parent, f'.{base}.old-{token}')
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
            return
        os.rmdir(out_dir)
    elif osp.lexists(out_dir):
        if not overwrite:
            raise FileExistsError(f'{out_dir} exists and is not a directory')
        os.remove(out_dir)
    os.replace(tmp, out_dir)


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``<path>.lock`` inside the block.

    The lock file is created (with its parent folder) if needed and left in
    place.
    """
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path + '.lock', 'a') as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
