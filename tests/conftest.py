"""Suite-wide guardrails: no test touches the user's vniahd cache, and the slow tests are marked.

Markers (registered in pyproject.toml): ``integration`` = a test that takes over ~5 s on two CPU
cores (still part of ``make test``; ``pytest -m "not slow and not integration"`` gives a quick loop:
a ``-m`` on the command line replaces the ``-m "not slow"`` of pyproject's addopts), ``slow`` =
long acceptance runs (deselected by default, ``make test-all`` runs them), ``gpu`` = needs CUDA.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CACHE_ENV = "VNIAHD_CACHE"  # read by vniahd.files.cache_dir on every call
TEST_CACHE_ENV = "VNIAHD_TEST_CACHE"

# Tests over ~5 s (measured with --durations on 2 shared cores) in files other suites own, by test
# function (every parametrization); marked here so that the marker policy is in one place. A test
# using the ``demo_haystack`` fixture is marked too (the build takes ~15 s).
INTEGRATION = {
    "tests/test_tiny_backend.py::test_train_then_evaluate_through_the_runner",  # 15-26 s
    "tests/test_evaluate_prefix.py::test_shared_prefix_equals_independent_evaluation",  # 9-26 s each
    "tests/test_evaluate_resume.py::test_second_evaluation_into_one_results_dir_is_refused_until_the_first_dies",
    "tests/test_evaluate_resume.py::test_sigkilled_cli_eval_resumes_to_identical_lines",  # ~9 s each
    "tests/test_evaluate_distributed.py::test_torchrun_two_processes_equals_single",  # 8-11 s
    "tests/test_evaluate_chunked.py::test_runner_chunked_equals_unchunked",  # ~6 s each
    "tests/test_api.py::test_readme_snippet_runs",  # ~7 s
    # ~20 s
    "tests/test_models_own_forward.py::test_published_designs_share_prefixes_and_pack_like_scoring_alone",
}


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory) -> Path:
    """``$VNIAHD_CACHE`` for the whole test session: a fresh temporary directory.

    No test reads or writes the user's cache (``~/.cache/vniahd`` or their ``$VNIAHD_CACHE``), so a
    stale or half-written entry there can neither hide nor cause a failure, and a test run leaves
    nothing behind. The demo haystack, which vniahd builds on first use into ``haystacks/`` of the
    checkout, is redirected into the same directory, so tests never write into the working tree.

    Session-scoped, not per test: several tests share expensive cached work across files, which a
    per-test directory would redo each time (the demo haystack build, ~15 s, is used by
    test_media_demo.py and test_documented_commands.py; tiny-model features and checkpoints are
    reused by the tiny tests and the slow acceptance test), and a function-scoped override would
    also replace the module-wide caches some test modules set up for themselves. Tests that need an
    *empty* cache (cache-hit/miss assertions) take the :func:`fresh_cache` fixture instead; tests
    that set ``VNIAHD_CACHE`` with ``monkeypatch`` get theirs restored to this one afterwards.

    ``VNIAHD_TEST_CACHE=DIR`` uses (and keeps) DIR instead, e.g. to keep the slow tiny-model
    trainings of ``make test-all`` / ``make tiny-acceptance`` between runs. Never point it at the
    cache you use for real runs.
    """
    import vniahd.media
    import vniahd.media.demo

    chosen = os.environ.get(TEST_CACHE_ENV)
    root = Path(chosen).expanduser().resolve() if chosen else tmp_path_factory.mktemp("vniahd-cache")
    root.mkdir(parents=True, exist_ok=True)
    demo_path = root / "demo" / "demo_haystack.mp4"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(root))
        # build_demo_haystack() looks default_demo_path up in its module at call time.
        mp.setattr(vniahd.media.demo, "default_demo_path", lambda: demo_path)
        mp.setattr(vniahd.media, "default_demo_path", lambda: demo_path)
        yield root


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch) -> Path:
    """An empty ``$VNIAHD_CACHE`` for this test only (for cache hit/miss assertions)."""
    root = tmp_path / "vniahd-cache"
    monkeypatch.setenv(CACHE_ENV, str(root))
    return root


@pytest.fixture(scope="session")
def demo_haystack(isolated_cache) -> Path:
    """The demo haystack built once per session into the session cache (~15 s on two cores);
    ``--haystack demo`` and ``build_demo_haystack()`` return this same file."""
    from vniahd.media import build_demo_haystack

    path = build_demo_haystack()
    assert path.parent.parent == isolated_cache  # the redirect above is in force
    return path


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.split("[")[0] in INTEGRATION or "demo_haystack" in item.fixturenames:
            item.add_marker(pytest.mark.integration)
