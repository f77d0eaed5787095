"""tools/test.py loads the weights a config names: the SAM-based families.

FM-l + FastSAM-s, FM-l + SAM2 box prompts, SAM2 video, PerSAM and Matcher
(whose empty-cache run goes through the tool: exit status, no traceback,
the first of its two files named). The light families are in
test_weights.py (the two files run on the two xdist workers side by side);
what both share is in weights_common.py.
"""

import pytest

from tests.test_tools.weights_common import (
    check_fails_without_weights_naming_the_file,
    check_uses_the_cached_weights,
    run_families,
    write_cache,
    write_data,
)

# Subprocess runs of tools/test.py: CI runs them (-m ''), the default skips.
pytestmark = pytest.mark.slow

# Longest first.
HERE = ('sam2-refiner', 'fastsam', 'sam2-video', 'matcher', 'persam')


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
    """A checkpoint cache holding the files of this module's families."""
    return write_cache(tmp_path_factory.mktemp('ckpt_cache'), HERE)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return write_data(tmp_path_factory.mktemp('tw_data'))


@pytest.fixture(scope='module')
def tool_runs(cache, data, tmp_path_factory):
    """Every family of this module with the cache full (Matcher also with
    it empty), two runs at a time."""
    return run_families(HERE, data, cache, tmp_path_factory.mktemp('tool_runs'))


@pytest.mark.parametrize('family', HERE)
def test_tools_test_uses_the_cached_weights(
    family, tool_runs, cache, data, monkeypatch
):
    check_uses_the_cached_weights(family, tool_runs, cache, data, monkeypatch)


@pytest.mark.parametrize('family', HERE)
def test_tools_test_fails_without_weights_naming_the_file(
    family, tool_runs, data, monkeypatch
):
    """Empty cache: the run stops before the first episode, naming the
    file, its full target path and the environment variable."""
    check_fails_without_weights_naming_the_file(family, tool_runs, data, monkeypatch)
