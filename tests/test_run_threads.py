"""The threads each run of ``orchestrator run --jobs N`` gets when it starts (``run_threads``)."""

from orchestrator.orchestration.parent import run_threads


def test_one_job_leaves_the_backend_its_default():
    assert run_threads(8, 1, [], waiting=True) is None
    assert run_threads(8, 1, [], waiting=False) is None


def test_runs_side_by_side_get_their_share_while_others_wait():
    assert run_threads(8, 4, [], waiting=True) == 2
    assert run_threads(8, 4, [2, 2, 2], waiting=True) == 2
    assert run_threads(2, 4, [1], waiting=True) == 1  # never below one thread


def test_once_nothing_waits_a_run_gets_every_free_core():
    assert run_threads(8, 4, [2], waiting=False) == 6
    assert run_threads(2, 2, [], waiting=False) == 2  # the last run, starting alone
    assert run_threads(2, 2, [1], waiting=False) == 1  # the other run still holds its core
    assert run_threads(8, 4, [2, 2, 2], waiting=False) == 2
    assert run_threads(4, 2, [None], waiting=False) == 2  # unknown holdings count as a share
