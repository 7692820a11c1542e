"""Sharing the cores between xdist workers (dyncheck.parallel)."""

from __future__ import annotations

import pytest
import torch

from dyncheck import parallel


@pytest.fixture
def no_thread_variables(monkeypatch):
    for name in parallel.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(("workers", "cores", "threads"), [(1, 2, 2), (2, 2, 1), (3, 2, 1), (2, 16, 8), (4, 16, 4)])
def test_each_worker_gets_its_share_and_at_least_one_thread(workers, cores, threads):
    assert parallel.threads_per_worker(workers, cores) == threads


def test_a_user_choice_is_found_in_either_variable():
    assert parallel.user_thread_setting({}) is None
    assert parallel.user_thread_setting({"OMP_NUM_THREADS": " "}) is None
    assert parallel.user_thread_setting({"OMP_NUM_THREADS": "4"}) == "OMP_NUM_THREADS=4"
    assert parallel.user_thread_setting({"MKL_NUM_THREADS": "3"}) == "MKL_NUM_THREADS=3"


def test_share_cores_sets_torch_threads_on_a_worker(monkeypatch, no_thread_variables):
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    monkeypatch.setattr(parallel, "available_cores", lambda: 8)
    assert parallel.share_cores(2) == 4
    assert calls == [4]


def test_share_cores_leaves_a_single_process_and_a_user_choice_alone(monkeypatch, no_thread_variables):
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    assert parallel.share_cores(1) is None
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert parallel.share_cores(4) is None
    assert calls == []


def test_header_says_how_the_cores_are_shared(monkeypatch, no_thread_variables):
    monkeypatch.setattr(parallel, "available_cores", lambda: 2)
    assert parallel.header(None) is None
    assert parallel.header(1) is None
    assert parallel.header(2) == "dyncheck: 2 workers, 1 torch thread each (2 cores; set OMP_NUM_THREADS to choose)"
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert parallel.header(2) == "dyncheck: 2 workers, torch threads as set by OMP_NUM_THREADS=2"


def test_workers_of_a_dyncheck_run_use_their_share(pytester, monkeypatch, no_thread_variables):
    """A real -n 2 run: each worker's torch runs with its share of this machine's cores."""
    pytester.makepyfile(
        probe="""
        import os

        import torch
        from hypothesis.control import currently_in_test_context
        from torch import nn

        class Probe(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(2, 2)

            def forward(self, x):
                # The checks' calls (resolving the target calls forward once too, in
                # each process, to tell vectors from sequences).
                if currently_in_test_context():
                    with open(os.environ["THREADS_FILE"], "a") as f:
                        f.write(f"{torch.get_num_threads()}\\n")
                return self.fc(x)
        """
    )
    pytester.syspathinsert()
    record = pytester.path / "threads.txt"
    monkeypatch.setenv("THREADS_FILE", str(record))
    result = pytester.runpytest_subprocess(
        "--dyncheck", "probe:Probe", "--dyncheck-only", "-n", "2", "--dyncheck-max-examples=1",
        "--dyncheck-invariants=finite", "-p", "no:cacheprovider",
    )
    assert result.ret == 0, result.stdout.str()
    threads = parallel.threads_per_worker(2)
    result.stdout.fnmatch_lines([f"dyncheck: 2 workers, {threads} torch thread*"])
    assert set(record.read_text().split()) == {str(threads)}
