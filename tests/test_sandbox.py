"""The forked child that PDFs are read in: answers, errors, and the limits that stop it."""

import multiprocessing
import os
import signal
import time

import pytest

from service.exceptions import TooManyPages
from service.sandbox import call_in_child


def spin() -> None:
    while True:
        pass


def refuse() -> None:
    raise TooManyPages("The PDF has 9 pages; at most 5 are accepted.", pages=9, max_pages=5)


def test_the_answer_comes_back():
    assert call_in_child(sorted, [3, 1, 2], timeout_s=30) == [1, 2, 3]


def test_a_docket_error_comes_back_whole():
    with pytest.raises(TooManyPages) as err:
        call_in_child(refuse, timeout_s=30)
    assert err.value.status == 413 and err.value.extra == {"pages": 9, "max_pages": 5}
    assert err.value.to_problem()["detail"] == "The PDF has 9 pages; at most 5 are accepted."


@pytest.mark.parametrize("work", [spin, lambda: time.sleep(3600)], ids=["busy", "sleeping"])
def test_a_child_past_its_time_is_killed(work):
    with pytest.raises(TimeoutError):
        call_in_child(work, timeout_s=0.5)
    assert multiprocessing.active_children() == []


def test_memory_past_the_cap_is_a_memory_error_in_the_child_only():
    with pytest.raises(MemoryError):
        call_in_child(bytearray, 1 << 30, timeout_s=60, memory_mb=64)
    assert len(bytearray(1 << 27)) == 1 << 27  # this process is not limited


def test_a_crashed_child_is_a_child_process_error():
    with pytest.raises(ChildProcessError, match="died"):
        call_in_child(lambda: os.kill(os.getpid(), signal.SIGKILL), timeout_s=30)
