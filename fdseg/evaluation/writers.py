"""Output folders of test runs: checks, hidden staging and atomic commit.

Metrics compute; this module writes. It owns three rules of
``tools/test.py --out`` / ``--show-dir``:

* **Refuse early, name the path.** :func:`check_output_dirs` fails before
  the first episode when an output path is an existing file, cannot be
  written, or (``--out``) already holds a ``metrics.json``,
  ``predictions/`` or ``gfds_report.json`` that fdseg did not write.
* **Never delete what fdseg did not write.** An earlier fdseg output in the
  same folder (recognised by ``metrics.json``: its ``producer`` and the
  prediction files it lists) is replaced as a whole; anything else (a
  user's own ``predictions/`` folder, an extra file dropped into ours)
  makes the run refuse instead of deleting it. Other entries of the folder
  are never touched.
* **Never leave partial output.** Files are staged in hidden
  ``.tmp-<pid>-<id>-<tag>`` folders (each records its owner in
  ``.owner.json``) and renamed into place at the end. While such a folder
  exists this process removes it on SIGINT, SIGTERM (what ``timeout`` and
  batch schedulers send) and SIGHUP, and at interpreter exit; the handlers
  are installed when the first staging folder is created and the previous
  ones restored when the last one is gone (nothing happens at import). A
  folder left by a process killed without a chance to clean up (SIGKILL,
  power loss) is removed by the next run writing there once its owner is
  dead (same host, pid gone or reused).
"""

import atexit
import contextlib
import json
import os
import os.path as osp
import shutil
import signal
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from fdseg.version import __version__

STAGING_PREFIX = '.tmp-'
OWNER_FILE = '.owner.json'
PRODUCER = f'fdseg {__version__}'
METRICS_NAME = 'metrics.json'
PREDICTIONS_NAME = 'predictions'
REPORT_NAME = 'gfds_report.json'
# What a run may replace in --out (and nothing else).
OUTPUT_NAMES = (METRICS_NAME, PREDICTIONS_NAME, REPORT_NAME)
_LEGACY_METRICS_KEYS = {'metrics', 'episodes', 'num_episodes'}
_MAX_LISTED = 5


class OutputDirError(ValueError):
    """An output path (``--out``, ``--show-dir``, ...) cannot be used."""


# ----------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------
def _nearest_existing(path: str) -> str:
    while not osp.lexists(path):
        parent = osp.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _check_writable_dir(path: str, flag: str) -> None:
    """``path`` is (or can become) a folder this process can write in."""
    apath = osp.abspath(path)
    if osp.lexists(apath) and not osp.isdir(apath):
        raise OutputDirError(f'{flag} {path}: exists and is not a folder')
    existing = _nearest_existing(apath)
    if not osp.isdir(existing):
        raise OutputDirError(
            f'{flag} {path}: cannot create a folder there, {existing} is a file'
        )
    # Try it: os.access() is wrong for root, ACLs and network filesystems.
    try:
        fd, probe = _mkstemp(existing)
    except OSError as e:
        where = '' if existing == apath else f' (in {existing})'
        raise OutputDirError(
            f'{flag} {path}: folder is not writable{where}: {e.strerror or e}'
        ) from None
    os.close(fd)
    os.unlink(probe)


def _mkstemp(folder: str):
    import tempfile

    return tempfile.mkstemp(prefix='.fdseg-probe-', dir=folder)


def _read_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _is_our_metrics(data) -> bool:
    if not isinstance(data, Mapping):
        return False
    producer = data.get('producer')
    if isinstance(producer, str):
        return producer.split(' ')[0] == 'fdseg'
    # Written by fdseg before the producer key existed.
    return _LEGACY_METRICS_KEYS <= set(data)


def foreign_outputs(out: str) -> List[str]:
    """Entries of ``out`` that a run would replace but fdseg did not write.

    ``metrics.json`` is ours when it carries fdseg's ``producer`` (or the
    layout of an older fdseg). ``predictions/`` is ours when every file in
    it is listed by our ``metrics.json`` (``episodes[i].prediction``).
    ``gfds_report.json`` is ours when it holds a ``table4`` row.

    Args:
        out (str): The output folder.

    Returns:
        list[str]: Offending paths (empty when the run may write).
    """
    foreign = []
    listed = set()
    metrics_path = osp.join(out, METRICS_NAME)
    metrics_ours = False
    if osp.lexists(metrics_path):
        data = None if osp.islink(metrics_path) else _read_json(metrics_path)
        metrics_ours = _is_our_metrics(data)
        if not metrics_ours:
            foreign.append(metrics_path)
        else:
            for ep in data.get('episodes') or []:
                if isinstance(ep, Mapping) and isinstance(ep.get('prediction'), str):
                    listed.add(ep['prediction'])
    pred = osp.join(out, PREDICTIONS_NAME)
    if osp.lexists(pred):
        if osp.islink(pred) or not osp.isdir(pred):
            foreign.append(pred)
        else:
            for root, dirs, files in os.walk(pred):
                # We never write links: a linked folder is someone else's.
                foreign += [
                    osp.join(root, d) for d in dirs if osp.islink(osp.join(root, d))
                ]
                for name in files:
                    path = osp.join(root, name)
                    rel = osp.relpath(path, out).replace(os.sep, '/')
                    if not metrics_ours or rel not in listed:
                        foreign.append(path)
    report = osp.join(out, REPORT_NAME)
    if osp.lexists(report):
        data = None if osp.islink(report) else _read_json(report)
        if not (isinstance(data, Mapping) and 'table4' in data):
            foreign.append(report)
    return foreign


def check_output_dir(out: str, flag: str = '--out') -> None:
    """Check a metric output folder; see :func:`check_output_dirs`."""
    _check_writable_dir(out, flag)
    if not osp.isdir(out):
        return
    foreign = foreign_outputs(out)
    if foreign:
        shown = ', '.join(foreign[:_MAX_LISTED])
        more = len(foreign) - _MAX_LISTED
        if more > 0:
            shown += f' (and {more} more)'
        raise OutputDirError(
            f'{flag} {out}: refusing to replace what fdseg did not write: '
            f'{shown}. A run replaces only the {", ".join(OUTPUT_NAMES)} of '
            'an earlier fdseg run there; choose a new or empty folder or '
            'move these away.'
        )


def check_output_dirs(
    out: Optional[str] = None,
    show_dir: Optional[str] = None,
    work_dir: Optional[str] = None,
) -> None:
    """Fail fast on unusable output paths of ``tools/test.py``.

    Call it before building the runner: the error then comes before the
    first episode. Nothing is created (a probe file is written and removed
    in the folder, or in its nearest existing parent).

    Args:
        out (str, optional): ``--out``: must be (or become) a writable
            folder without a ``metrics.json`` / ``predictions/`` /
            ``gfds_report.json`` that fdseg did not write.
        show_dir (str, optional): ``--show-dir``: a writable folder.
            A relative one lives under the run's log dir (inside
            ``work_dir``); it is checked there when ``work_dir`` is given
            and otherwise left to the visualization hook.
        work_dir (str, optional): ``--work-dir`` / ``cfg.work_dir``: a
            writable folder.

    Raises:
        OutputDirError: Naming the option and the path.
    """
    if work_dir is not None:
        _check_writable_dir(work_dir, '--work-dir')
    if out is not None:
        check_output_dir(out, '--out')
    if show_dir is not None:
        if osp.isabs(show_dir):
            _check_writable_dir(show_dir, '--show-dir')
        elif work_dir is not None:
            _check_writable_dir(osp.join(work_dir, show_dir), '--show-dir')


# ----------------------------------------------------------------------
# owners of staging folders
# ----------------------------------------------------------------------
def _proc_stat(pid: int) -> Optional[List[str]]:
    """Fields 3.. of ``/proc/<pid>/stat`` (Linux), else None."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> Optional[int]:
    fields = _proc_stat(pid)
    try:
        return int(fields[19]) if fields else None  # field 22: starttime
    except (IndexError, ValueError):
        return None


def _owner_record() -> dict:
    pid = os.getpid()
    return dict(
        producer=PRODUCER,
        pid=pid,
        host=socket.gethostname(),
        start=_start_time(pid),
        created=time.time(),
    )


def _owner_alive(owner: Mapping) -> bool:
    """Whether the process that made a staging folder may still use it."""
    if owner.get('host') != socket.gethostname():
        return True  # another machine: cannot tell
    try:
        pid = int(owner['pid'])
    except (KeyError, TypeError, ValueError):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    except OSError:
        return True
    fields = _proc_stat(pid)
    if fields and fields[0] == 'Z':
        return False  # exited, not yet reaped
    start = owner.get('start')
    now = _start_time(pid)
    if start is not None and now is not None and int(start) != now:
        return False  # the pid was reused
    return True


def remove_stale_staging(parent: str) -> List[str]:
    """Remove fdseg staging folders in ``parent`` whose owner is dead.

    Only folders named ``.tmp-*`` holding an fdseg ``.owner.json`` of this
    host are considered; anything else is left alone.

    Args:
        parent (str): Folder to clean.

    Returns:
        list[str]: Removed folders.
    """
    removed = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        path = osp.join(parent, name)
        if (
            not name.startswith(STAGING_PREFIX)
            or osp.islink(path)
            or not osp.isdir(path)
        ):
            continue
        owner = _read_json(osp.join(path, OWNER_FILE))
        if not isinstance(owner, Mapping) or not str(
            owner.get('producer', '')
        ).startswith('fdseg'):
            continue
        if not _owner_alive(owner):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


# ----------------------------------------------------------------------
# cleanup on signals and exit
# ----------------------------------------------------------------------
class _StagingGuard:
    """Removes this process's live staging folders when it is stopped.

    Handlers for SIGINT / SIGTERM / SIGHUP (and an ``atexit`` hook) are
    installed when the first folder is registered and removed, restoring
    the previous handlers, when the last one is discarded. On a signal the
    folders are removed, then the previous handler runs (default SIGINT:
    ``KeyboardInterrupt``; default SIGTERM: the process dies by the signal,
    exit status 143 in a shell). A forked child (data-loader worker) that
    inherited the handler only runs the previous one. Inside
    :meth:`deferred` a signal waits until the block is done, so that a
    commit of renames is never cut in half.
    """

    SIGNALS = ('SIGINT', 'SIGTERM', 'SIGHUP')

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._live: Dict[str, Tuple[Optional[Callable[[], None]], Tuple[str, ...]]] = {}
        self._pid: Optional[int] = None
        self._previous: Dict[int, object] = {}
        self._handler = self._on_signal
        self._exit_hook = self._at_exit
        self._defer = 0
        self._pending: List[Tuple[int, object]] = []

    # registration --------------------------------------------------------
    def add(
        self,
        path: str,
        on_remove: Optional[Callable[[], None]] = None,
        created: Sequence[str] = (),
    ) -> None:
        with self._lock:
            if self._pid != os.getpid():
                # A forked child starts with its parent's folders: not ours
                # (it keeps the parent's previous handlers: see _install).
                self._live.clear()
                self._pid = None
            if not self._live:
                self._install()
            self._live[path] = (on_remove, tuple(created))

    def discard(self, path: str, remove: bool = True) -> None:
        with self._lock:
            entry = self._live.pop(path, None)
            if remove:
                shutil.rmtree(path, ignore_errors=True)
                if entry is not None:
                    _rmdirs(entry[1])
            if not self._live:
                self._uninstall()

    def __contains__(self, path: str) -> bool:
        return path in self._live

    def remove_all(self) -> None:
        """Remove every live folder (and tell their owners)."""
        with self._lock:
            if self._pid != os.getpid():
                return
            live, self._live = self._live, {}
            for path, (on_remove, created) in live.items():
                shutil.rmtree(path, ignore_errors=True)
                _rmdirs(created)
                if on_remove is not None:
                    try:
                        on_remove()
                    except Exception:  # noqa: BLE001 - cleanup goes on
                        pass
            self._uninstall()

    @contextlib.contextmanager
    def deferred(self):
        """Hold signals (of the owning process) until the block is done."""
        self._defer += 1
        try:
            yield
        finally:
            self._defer -= 1
            if not self._defer and self._pending:
                signum, previous = self._pending[0]
                self._pending.clear()
                self._dispatch(signum, None, previous)

    # handlers --------------------------------------------------------
    def _install(self) -> None:
        self._pid = os.getpid()
        atexit.register(self._exit_hook)
        if threading.current_thread() is not threading.main_thread():
            return  # signal.signal() only works there; atexit still does
        for name in self.SIGNALS:
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            previous = signal.getsignal(signum)
            if previous == self._handler:
                # Inherited from a forked parent: chain to what it replaced.
                previous = self._previous.get(signum, signal.SIG_DFL)
            if previous is None:
                continue  # set outside Python: cannot restore it
            signal.signal(signum, self._handler)
            self._previous[signum] = previous

    def _uninstall(self) -> None:
        atexit.unregister(self._exit_hook)
        if threading.current_thread() is threading.main_thread():
            for signum, previous in self._previous.items():
                # Leave a handler installed after ours in place.
                if signal.getsignal(signum) == self._handler:
                    signal.signal(signum, previous)
        self._previous.clear()

    def _on_signal(self, signum, frame) -> None:
        previous = self._previous.get(signum, signal.SIG_DFL)
        if os.getpid() == self._pid and self._defer:
            self._pending.append((signum, previous))
            return
        self._dispatch(signum, frame, previous)

    def _dispatch(self, signum, frame, previous) -> None:
        if previous == signal.SIG_IGN:
            return  # the process ignores it: keep the folders too
        if os.getpid() == self._pid:
            self.remove_all()
        if callable(previous):
            previous(signum, frame)
        else:  # SIG_DFL: die by the signal, as without us
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    def _at_exit(self) -> None:
        self.remove_all()


def _rmdirs(created: Iterable[str]) -> None:
    """Remove folders we created for staging, deepest first, if empty."""
    for path in created:
        try:
            os.rmdir(path)
        except OSError:
            return


_GUARD = _StagingGuard()


def _makedirs(path: str) -> List[str]:
    """Make ``path`` (and parents); returns the ones made, deepest first."""
    missing = []
    p = osp.abspath(path)
    while not osp.lexists(p):
        missing.append(p)
        parent = osp.dirname(p)
        if parent == p:
            break
        p = parent
    os.makedirs(path, exist_ok=True)
    return missing


class StagingDir:
    """A hidden folder ``<parent>/.tmp-<pid>-<id>-<tag>`` owned by this run.

    Creating one first removes stale staging folders of dead fdseg runs in
    ``parent``; the folder is removed on :meth:`discard`, on a signal and at
    exit (see :class:`_StagingGuard`). ``parent`` itself, when created for
    it, goes with it if left empty.

    Args:
        parent (str): The output folder.
        tag (str): Suffix of the name (``r<rank>``, ``merge``).
        on_remove (callable, optional): Called when the folder is removed
            on a signal or at exit (not on :meth:`discard`).
    """

    def __init__(
        self, parent: str, tag: str, on_remove: Optional[Callable[[], None]] = None
    ) -> None:
        remove_stale_staging(parent)
        self.parent = parent
        self.name = f'{STAGING_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}-{tag}'
        self.path = osp.abspath(osp.join(parent, self.name))
        # Registered (handlers installed) before anything is created, and
        # a signal meanwhile waits: no moment leaves an unguarded folder.
        with _GUARD.deferred():
            _GUARD.add(self.path, on_remove)
            try:
                _GUARD.add(self.path, on_remove, _makedirs(parent))
                os.mkdir(self.path)
                with open(osp.join(self.path, OWNER_FILE), 'w') as f:
                    json.dump(_owner_record(), f)
            except BaseException:
                self.discard()
                raise

    @property
    def alive(self) -> bool:
        """False once removed (by :meth:`discard`, a signal or exit)."""
        return self.path in _GUARD and osp.isdir(self.path)

    def discard(self) -> None:
        """Remove the folder and everything in it."""
        _GUARD.discard(self.path)

    def forget(self) -> None:
        """Stop guarding the folder (someone else removes or moved it)."""
        _GUARD.discard(self.path, remove=False)


def discard_staging(parent: str, names: Iterable[str]) -> None:
    """Remove staging folders (of any rank) of this run by name."""
    for name in names:
        if not name.startswith(STAGING_PREFIX) or '/' in name or os.sep in name:
            continue  # never delete anything but staging folders
        path = osp.abspath(osp.join(parent, name))
        if path in _GUARD:
            _GUARD.discard(path)
        else:
            shutil.rmtree(path, ignore_errors=True)


# ----------------------------------------------------------------------
# commit
# ----------------------------------------------------------------------
def write_outputs(
    out: str, payload: dict, predictions: Optional[Sequence[Tuple[str, str]]] = None
) -> None:
    """Atomically replace ``out``'s ``metrics.json`` and ``predictions/``.

    The new files are assembled in a staging folder; then, with signals
    held: the folder is checked again (:func:`foreign_outputs`: a
    ``predictions/`` or ``metrics.json`` that fdseg did not write is never
    replaced, the call raises :class:`OutputDirError` instead), the earlier
    ``predictions/`` (ours) is moved aside, the new one moved in, and
    ``metrics.json`` replaced last (its presence marks a complete output).
    An earlier ``gfds_report.json`` (ours) is removed as well; a benchmark
    metric writes its new one after this call. A failure puts the earlier
    output back. Without ``predictions`` an earlier fdseg ``predictions/``
    is removed so that the folder never mixes two runs.

    Args:
        out (str): Output folder.
        payload (dict): Strict-JSON-able content of ``metrics.json``
            (``producer`` is added).
        predictions (list[tuple[str, str]], optional): ``(staged file
            relative to out, final path relative to predictions/)``; the
            staged files are moved.
    """
    check_output_dir(out, 'output_dir')
    staging = StagingDir(out, 'merge')
    try:
        tmp_json = osp.join(staging.path, METRICS_NAME)
        with open(tmp_json, 'w') as f:
            json.dump(dict(producer=PRODUCER, **payload), f, indent=2, allow_nan=False)
        staged_pred = osp.join(staging.path, PREDICTIONS_NAME)
        if predictions is not None:
            os.mkdir(staged_pred)
            for src, name in predictions:
                dst = osp.join(staged_pred, *name.split('/'))
                os.makedirs(osp.dirname(dst), exist_ok=True)
                os.replace(osp.join(out, *src.split('/')), dst)
        final_pred = osp.join(out, PREDICTIONS_NAME)
        final_json = osp.join(out, METRICS_NAME)
        # Earlier outputs (ours, checked below) moved aside, restored on
        # failure: predictions/ and a gfds_report.json of an earlier run,
        # which a benchmark metric writes anew after this call.
        aside = [
            (final_pred, osp.join(staging.path, 'old-predictions')),
            (osp.join(out, REPORT_NAME), osp.join(staging.path, 'old-' + REPORT_NAME)),
        ]
        with _GUARD.deferred():
            # Again: something may have appeared during the run.
            check_output_dir(out, 'output_dir')
            moved = []
            try:
                for final, old in aside:
                    if osp.lexists(final):
                        os.replace(final, old)
                        moved.append((final, old))
                if predictions is not None:
                    os.replace(staged_pred, final_pred)
                os.replace(tmp_json, final_json)
            except BaseException:
                if (
                    predictions is not None
                    and osp.lexists(final_pred)
                    and not osp.lexists(staged_pred)
                ):
                    os.replace(final_pred, staged_pred)
                for final, old in moved:
                    os.replace(old, final)
                raise
    finally:
        staging.discard()
