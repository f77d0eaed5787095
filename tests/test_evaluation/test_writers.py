"""Outputs and interruption of test runs (``--out``, ``--show-dir``).

Never delete what fdseg did not write, fail on unusable paths before the
first episode, clean hidden staging folders on SIGTERM as on SIGINT (and
stale ones of dead runs later), and record each episode's files in
``metrics.json`` so that a run can be replayed.
"""

import json
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from fdseg.evaluation import FewShotIoUMetric, writers
from fdseg.evaluation.writers import OutputDirError, check_output_dirs
from tests.conftest import REPO
from tests.subprocess_utils import finish, start, tool_env, tool_main

TEST_PY = osp.join(REPO, 'tools', 'test.py')
QUICKSTART = osp.join(
    REPO, 'configs', 'quickstart', 'fm_filterbank_no-train_synthetic-all-1shot.py'
)
# The --out checks of tools/test.py need check_output_dirs() called from
# its build_cfg (the show-dir check also runs from the visualization hook).
WIRED = 'check_output_dirs' in open(TEST_PY).read()
needs_wiring = pytest.mark.xfail(
    not WIRED,
    strict=True,
    reason='tools/test.py does not call check_output_dirs() yet: the metric '
    'refuses only at its first episode',
)

# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------


def episode(product='P', category='c1', query_path='/d/P/c1/001.png', **extra):
    pred = torch.zeros(1, 4, 4, dtype=torch.long)
    pred[0, :2] = 1
    gt = torch.zeros(1, 4, 4, dtype=torch.long)
    gt[0, :1] = 1
    return dict(
        pred_sem_seg=dict(data=pred),
        gt_sem_seg=dict(data=gt),
        product=product,
        category=category,
        query_label=1,
        is_good=False,
        query_path=query_path,
        ori_shape=(4, 4),
        **extra,
    )


def run_metric(out, samples=None, **kwargs):
    samples = samples or [episode(), episode(category='c2')]
    metric = FewShotIoUMetric(output_dir=str(out), **kwargs)
    metric.process(None, samples)
    return metric.evaluate(len(samples))


def staging(out):
    return sorted(n for n in os.listdir(out) if n.startswith('.tmp-'))


def tree(path):
    """Every file under ``path`` (relative), with its content."""
    found = {}
    for root, _, files in os.walk(path):
        for name in files:
            p = osp.join(root, name)
            with open(p, 'rb') as f:
                found[osp.relpath(p, path)] = f.read()
    return found


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder this process cannot write in (root ignores mode bits)."""
    ro = tmp_path / 'ro'
    ro.mkdir()
    ro.chmod(0o555)
    try:
        try:
            (ro / 'probe').write_text('x')
        except OSError:
            yield str(ro)
            return
        (ro / 'probe').unlink()
        # Running as root: a kernel folder that refuses new files.
        try:
            fd, name = writers._mkstemp('/sys')
        except OSError:
            yield '/sys'
            return
        os.close(fd)
        os.unlink(name)
        pytest.skip('no read-only folder available (running as root)')
    finally:
        ro.chmod(0o755)


# A stand-in for an earlier run: stages one prediction in OUT, then waits
# (a live owner) or dies without cleaning up (SIGKILL: a stale folder).
STAGER = """
import os, signal, sys, time
# As in a terminal: a parent that ran us in the background (or under nohup)
# may have left SIGINT (SIGHUP) ignored, and an ignored signal is (rightly)
# kept ignored by the writers.
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGHUP, signal.SIG_DFL)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
sys.path.insert(0, sys.argv[3])  # this checkout's fdseg
import torch
from fdseg.evaluation import FewShotIoUMetric
out, mode = sys.argv[1], sys.argv[2]
pred = torch.zeros(1, 4, 4, dtype=torch.long)
metric = FewShotIoUMetric(output_dir=out)
metric.process(None, [dict(
    pred_sem_seg=dict(data=pred), gt_sem_seg=dict(data=pred), product='P',
    category='c', query_label=1, is_good=False, query_path='/d/q.png',
    ori_shape=(4, 4))])
print('STAGED', flush=True)
if mode == 'kill':
    os.kill(os.getpid(), signal.SIGKILL)
time.sleep(300)
"""


def start_stager(tmp_path, out, mode):
    script = tmp_path / 'stager.py'
    script.write_text(STAGER)
    proc = start([str(script), str(out), mode, REPO], cwd=REPO)
    seen = ''
    for line in proc.stdout:
        if line.startswith('STAGED'):
            return proc
        seen += line
    proc.kill()
    pytest.fail(f'stager failed: {seen}{proc.communicate()[0]}')


# ----------------------------------------------------------------------------
# 1. --out never deletes what fdseg did not write
# ----------------------------------------------------------------------------


def test_user_predictions_folder_is_refused_not_deleted(tmp_path):
    out = tmp_path / 'out'
    (out / 'predictions').mkdir(parents=True)
    (out / 'predictions' / 'mine.png').write_bytes(b'user data')
    (out / 'notes.txt').write_text('keep')
    before = tree(out)
    with pytest.raises(OutputDirError) as e:
        check_output_dirs(out=str(out))
    assert str(out / 'predictions' / 'mine.png') in str(e.value)
    # The metric alone refuses too, before staging anything.
    with pytest.raises(OutputDirError, match='mine.png'):
        run_metric(out)
    assert tree(out) == before
    assert staging(out) == []


def test_foreign_metrics_json_and_report_are_refused(tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'metrics.json').write_text('{"mine": 1}')
    (out / 'gfds_report.json').write_text('not json')
    with pytest.raises(OutputDirError) as e:
        run_metric(out)
    assert 'metrics.json' in str(e.value)
    assert 'gfds_report.json' in str(e.value)
    assert (out / 'metrics.json').read_text() == '{"mine": 1}'
    assert sorted(os.listdir(out)) == ['gfds_report.json', 'metrics.json']


def test_file_dropped_into_our_predictions_is_kept(tmp_path):
    out = tmp_path / 'out'
    run_metric(out)
    (out / 'predictions' / 'P' / 'note.txt').write_text('mine')
    before = tree(out)
    with pytest.raises(OutputDirError, match='note.txt'):
        run_metric(out)
    assert tree(out) == before


def test_foreign_folder_appearing_during_the_run(tmp_path):
    out = tmp_path / 'out'
    run_metric(out)
    metric = FewShotIoUMetric(output_dir=str(out))
    metric.process(None, [episode()])
    os.remove(out / 'metrics.json')  # the user replaces our output
    (out / 'metrics.json').write_text('{}')
    before = {k: v for k, v in tree(out).items() if not k.startswith('.tmp-')}
    with pytest.raises(OutputDirError, match='metrics.json'):
        metric.evaluate(1)
    assert tree(out) == before
    assert staging(out) == []


def test_earlier_fdseg_output_is_replaced(tmp_path):
    out = tmp_path / 'out'
    (tmp_path / 'out').mkdir()
    (out / 'notes.txt').write_text('keep')
    run_metric(out, [episode(category='c1'), episode(category='c2')])
    with open(out / 'metrics.json') as f:
        saved = json.load(f)
    assert saved['producer'].startswith('fdseg')
    # An output of fdseg before the producer key is recognised too.
    del saved['producer']
    with open(out / 'metrics.json', 'w') as f:
        json.dump(saved, f)
    # A report of an earlier benchmark run does not outlive it.
    (out / 'gfds_report.json').write_text('{"table4": {}}')
    run_metric(out, [episode(category='c3')])
    assert sorted(tree(out)) == [
        'metrics.json',
        'notes.txt',
        osp.join('predictions', 'P', 'c3', '001.png'),
    ]
    # Without predictions, ours go: the folder never mixes two runs.
    run_metric(out, [episode(category='c3')], save_predictions=False)
    assert sorted(os.listdir(out)) == ['metrics.json', 'notes.txt']


def test_failed_commit_restores_the_earlier_output(tmp_path, monkeypatch):
    out = tmp_path / 'out'
    run_metric(out)
    (out / 'gfds_report.json').write_text('{"table4": {}}')
    before = tree(out)
    real = os.replace

    def replace(src, dst):
        if osp.basename(str(dst)) == 'metrics.json':
            raise OSError('disk full')
        return real(src, dst)

    monkeypatch.setattr(writers.os, 'replace', replace)
    with pytest.raises(OSError, match='disk full'):
        run_metric(out, [episode(category='c9')])
    assert tree(out) == before
    assert staging(out) == []


# ----------------------------------------------------------------------------
# 3. unusable paths fail first, naming the path
# ----------------------------------------------------------------------------


@pytest.mark.parametrize('option', ['out', 'show_dir', 'work_dir'])
def test_existing_file_is_refused(tmp_path, option):
    path = tmp_path / 'taken'
    path.write_text('a file')
    with pytest.raises(OutputDirError) as e:
        check_output_dirs(**{option: str(path)})
    assert str(path) in str(e.value)
    assert '--' + option.replace('_', '-') in str(e.value)
    # below a file
    with pytest.raises(OutputDirError, match=str(path)):
        check_output_dirs(**{option: str(path / 'sub')})
    assert path.read_text() == 'a file'


@pytest.mark.parametrize('option', ['out', 'show_dir'])
def test_readonly_folder_is_refused(readonly_dir, option):
    for path in (readonly_dir, osp.join(readonly_dir, 'new', 'sub')):
        with pytest.raises(OutputDirError, match='not writable') as e:
            check_output_dirs(**{option: path})
        assert path in str(e.value)


def test_metric_refuses_a_file_before_writing(tmp_path):
    path = tmp_path / 'taken'
    path.write_text('a file')
    with pytest.raises(OutputDirError, match=str(path)):
        FewShotIoUMetric(output_dir=str(path)).process(None, [episode()])
    assert path.read_text() == 'a file'


def test_usable_paths_pass_and_create_nothing(tmp_path):
    check_output_dirs(
        out=str(tmp_path / 'a' / 'b'),
        show_dir=str(tmp_path / 'vis'),
        work_dir=str(tmp_path / 'wd'),
    )
    check_output_dirs(show_dir='vis', work_dir=str(tmp_path / 'wd'))
    check_output_dirs(out=str(tmp_path))
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------
# 2. signals, exit and stale staging folders
# ----------------------------------------------------------------------------


# Importing fdseg installs no atexit hook or signal handler:
# test_import_side_effects (one fresh interpreter for every import check).


def test_handlers_only_while_staging(tmp_path):
    sigs = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    before = [signal.getsignal(s) for s in sigs]
    metric = FewShotIoUMetric(output_dir=str(tmp_path / 'out'))
    metric.process(None, [episode()])
    assert all(signal.getsignal(s) != b for s, b in zip(sigs, before))
    metric.evaluate(1)
    assert [signal.getsignal(s) for s in sigs] == before
    # Also after a failed round.
    metric.process(None, [episode()])
    with pytest.raises(KeyError):
        metric.process(None, [{'pred_sem_seg': None}])
    assert [signal.getsignal(s) for s in sigs] == before


@pytest.mark.parametrize('sig', ['SIGTERM', 'SIGINT', 'SIGHUP'])
def test_signal_removes_staging(tmp_path, sig):
    out = tmp_path / 'out'
    proc = start_stager(tmp_path, out, 'wait')
    assert len(staging(out)) == 1
    proc.send_signal(getattr(signal, sig))
    code, log = finish(proc, 120)
    assert code != 0, log
    # out was created for the staging folder: nothing of the run is left.
    assert not out.exists(), os.listdir(out)


def test_forked_worker_leaves_the_parents_staging(tmp_path):
    """A data-loader worker inherits the handler: it must not clean up."""
    out = tmp_path / 'out'
    metric = FewShotIoUMetric(output_dir=str(out))
    metric.process(None, [episode()])
    mine = staging(out)
    pid = os.fork()
    if pid == 0:  # the worker, stopped like a scheduler stops everyone
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
    assert staging(out) == mine
    metric.evaluate(1)
    assert staging(out) == []


def test_stale_staging_of_dead_runs_is_removed_live_ones_kept(tmp_path):
    out = tmp_path / 'out'
    dead = start_stager(tmp_path, out, 'kill')
    assert finish(dead, 120)[0] == -signal.SIGKILL
    stale = staging(out)
    assert len(stale) == 1
    live = start_stager(tmp_path, out, 'wait')
    try:
        mine = staging(out)
        live_dirs = sorted(set(mine) - set(stale))
        assert len(live_dirs) == 1
        (out / '.tmp-user').mkdir()  # not fdseg's: no owner record
        run_metric(out)
        assert staging(out) == sorted(live_dirs + ['.tmp-user'])
        assert (out / 'metrics.json').is_file()
    finally:
        live.send_signal(signal.SIGTERM)
        code, log = finish(live, 120)
    assert code != 0
    assert staging(out) == ['.tmp-user']


def test_owner_liveness():
    me = writers._owner_record()
    assert writers._owner_alive(me)
    if me['start'] is not None:  # a reused pid is not the owner
        assert not writers._owner_alive(dict(me, start=me['start'] + 1))
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    assert not writers._owner_alive(dict(me, pid=proc.pid, start=None))
    # another machine: cannot tell, so alive
    assert writers._owner_alive(
        dict(me, pid=proc.pid, host=socket.gethostname() + '-other')
    )


# ----------------------------------------------------------------------------
# 4. replay information
# ----------------------------------------------------------------------------


def test_metrics_json_records_episode_files(tmp_path):
    out = tmp_path / 'out'
    samples = [
        episode(
            episode_idx=7,
            query_mask_path='/d/P/gt/c1/001.png',
            support_paths=['/d/P/c1/002.png', '/d/P/c1/003.png'],
            support_mask_paths=['/d/P/gt/c1/002.png', '/d/P/gt/c1/003.png'],
            support_labels=torch.tensor([1, 1]),
            way_categories=['P/c1'],
        ),
        episode(category='c2'),  # no replay keys: recorded as null
    ]
    run_metric(out, samples)
    with open(out / 'metrics.json') as f:
        eps = json.load(f)['episodes']
    assert eps[0]['episode_idx'] == 7
    assert eps[0]['category'] == 'c1' and eps[0]['product'] == 'P'
    assert eps[0]['query_path'] == '/d/P/c1/001.png'
    assert eps[0]['query_mask_path'] == '/d/P/gt/c1/001.png'
    assert eps[0]['support_paths'] == ['/d/P/c1/002.png', '/d/P/c1/003.png']
    assert eps[0]['support_mask_paths'] == ['/d/P/gt/c1/002.png', '/d/P/gt/c1/003.png']
    assert eps[0]['support_labels'] == [1, 1]
    assert eps[0]['way_categories'] == ['P/c1']
    assert eps[1]['support_paths'] is None and eps[1]['episode_idx'] is None


# ----------------------------------------------------------------------------
# tools/test.py, the way a user runs it
# ----------------------------------------------------------------------------

# Prints a line when an episode starts: "before the first episode" checks.
MARK_HOOK = """
from mmengine.hooks import Hook
from fdseg.registry import HOOKS


@HOOKS.register_module(force=True)
class EpisodeMarkHook(Hook):
    def before_test_iter(self, runner, batch_idx, data_batch=None):
        print('EPISODE-STARTED', flush=True)
"""


def marked_config(tmp_path):
    (tmp_path / 'fdseg_episode_mark.py').write_text(MARK_HOOK)
    cfg = tmp_path / 'marked.py'
    cfg.write_text(
        f'_base_ = [{QUICKSTART!r}]\n'
        "custom_imports = dict(imports=['fdseg_episode_mark'], "
        'allow_failed_imports=False)\n'
        "custom_hooks = [dict(type='EpisodeMarkHook')]\n"
    )
    return str(cfg)


def tool(tmp_path, synthetic_root, *args, config=QUICKSTART):
    env = tool_env()
    env['PYTHONPATH'] = str(tmp_path)  # the marking hook's module
    opts = [
        f'test_dataloader.dataset.data_root={synthetic_root}',
        'test_dataloader.dataset.num_images=4',
    ]
    cmd = [
        sys.executable,
        TEST_PY,
        config,
        '--work-dir',
        str(tmp_path / 'wd'),
        *args,
        '--cfg-options',
        *opts,
    ]
    # A log file, not a pipe: nobody reads a pipe while the test polls.
    with open(tmp_path / 'tool.log', 'w') as log:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc.log_path = tmp_path / 'tool.log'
    return proc


def finish_tool(proc, timeout):
    """Wait for a :func:`tool` process: ``(returncode, log)``."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f'timed out after {timeout}s:\n{proc.log_path.read_text()[-4000:]}')
    return proc.returncode, proc.log_path.read_text()


@pytest.mark.parametrize(
    'case',
    [
        pytest.param('out-file', marks=needs_wiring),
        pytest.param('out-readonly', marks=needs_wiring),
        'show-dir-file',
    ],
)
@pytest.mark.slow
def test_tools_refuse_unusable_paths_before_the_first_episode(
    tmp_path, synthetic_root, case, request, monkeypatch, capfd
):
    taken = tmp_path / 'taken'
    taken.write_text('a file')
    if case == 'out-file':
        bad, args = str(taken), ['--out', str(taken)]
    elif case == 'out-readonly':
        ro = request.getfixturevalue('readonly_dir')
        bad = osp.join(ro, 'out')
        args = ['--out', bad]
    else:
        bad = str(taken)
        args = ['--out', str(tmp_path / 'out'), '--show-dir', bad]
    # The argument checks through the tool's main() in-process (tools/test.py's
    # refusal exit path as a command: test_runner, test_weights_sam).
    from fdseg.engine import USER_ERRORS

    config = marked_config(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # the marking hook's module
    with pytest.raises(USER_ERRORS) as err:
        tool_main(
            'test',
            [config, '--work-dir', str(tmp_path / 'wd'), *args, '--cfg-options']
            + [
                f'test_dataloader.dataset.data_root={synthetic_root}',
                'test_dataloader.dataset.num_images=4',
            ],
        )
    log = str(err.value) + capfd.readouterr().out
    assert bad in log, log[-3000:]
    assert 'EPISODE-STARTED' not in log, log[-3000:]
    assert taken.read_text() == 'a file'
    assert not (tmp_path / 'out').exists()


@pytest.mark.slow
def test_tools_sigterm_leaves_no_staging(tmp_path, synthetic_root):
    out = tmp_path / 'out'
    proc = tool(tmp_path, synthetic_root, '--out', str(out))
    deadline = time.time() + 300
    try:
        while not (out.is_dir() and staging(out)):
            assert proc.poll() is None, proc.log_path.read_text()[-3000:]
            assert time.time() < deadline, 'no staging folder appeared'
            time.sleep(0.05)
        # Only the tool's process, as `timeout` does.
        proc.send_signal(signal.SIGTERM)
    finally:
        code, log = finish_tool(proc, 120)
    assert code != 0, log[-3000:]
    assert 'Iter(test) [40/40]' not in log  # it was cut short
    assert not out.exists(), os.listdir(out)


@pytest.mark.slow
def test_tools_later_run_cleans_stale_and_records_replay(tmp_path, synthetic_root):
    out = tmp_path / 'out'
    dead = start_stager(tmp_path, out, 'kill')
    finish(dead, 120)
    stale = staging(out)
    live = start_stager(tmp_path, out, 'wait')
    try:
        live_dirs = sorted(set(staging(out)) - set(stale))
        # The tool's main() in this process (a later run of the same tool).
        tool_main(
            'test',
            [
                QUICKSTART,
                '--work-dir',
                str(tmp_path / 'wd'),
                '--out',
                str(out),
                '--cfg-options',
                f'test_dataloader.dataset.data_root={synthetic_root}',
                'test_dataloader.dataset.num_images=4',
                'test_dataloader.dataset.max_episodes_per_category=1',
            ],
        )
        assert staging(out) == live_dirs
    finally:
        live.send_signal(signal.SIGTERM)
        finish(live, 120)
    assert staging(out) == []

    with open(out / 'metrics.json') as f:
        saved = json.load(f)
    episodes = saved['episodes']
    assert len(episodes) == saved['num_episodes'] == 10

    # Replay: the recorded files are the dataset's episodes.
    from mmengine.config import Config

    from fdseg.registry import DATASETS

    cfg = Config.fromfile(QUICKSTART).test_dataloader.dataset
    cfg.update(data_root=synthetic_root, num_images=4, max_episodes_per_category=1)
    dataset = DATASETS.build(cfg)
    assert sorted(e['episode_idx'] for e in episodes) == list(range(len(dataset)))
    for ep in episodes:
        info = dataset.get_data_info(ep['episode_idx'])
        assert ep['query_path'] == info['img_path']
        assert ep['query_mask_path'] == info['seg_map_path']
        assert ep['support_paths'] == info['support_paths']
        assert ep['support_mask_paths'] == info['support_mask_paths']
        assert ep['category'] == info['category']
        assert len(ep['support_paths']) == 1
        assert all(
            osp.isfile(p)
            for p in ep['support_paths'] + ep['support_mask_paths'] + [ep['query_path']]
        )
