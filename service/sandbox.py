"""Run one function in a forked child under a wall-clock limit and a memory cap.

pypdf runs in-process and has no time limit of its own: a hostile PDF can keep
it busy or make it allocate until the server swaps. A forked child is cheap
(copy-on-write, nothing to import), can be killed when the time is up, and an
address-space limit (``RLIMIT_AS``) turns runaway allocation into a
``MemoryError`` there, not in the API process. A crash (a segfault in a C
extension) takes only the child down.

The answer comes back over a pipe, pickled: the function's result, or the
exception it raised. The limits are reported as the built-in exceptions
:class:`TimeoutError`, :class:`MemoryError` and :class:`ChildProcessError`,
which the caller turns into errors a person can act on.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import resource
from collections.abc import Callable
from typing import Any

_FORK = multiprocessing.get_context("fork")


def call_in_child(fn: Callable[..., Any], *args: Any, timeout_s: float, memory_mb: int | None = None) -> Any:
    """``fn(*args)`` in a forked child; its result, or its exception raised here.

    Raises :class:`TimeoutError` when it runs past *timeout_s* (the child is
    killed), :class:`MemoryError` when it needs more than *memory_mb* MiB on
    top of what the process held at the fork, :class:`ChildProcessError`
    when the child dies without answering.
    """
    receiver, sender = _FORK.Pipe(duplex=False)
    child = _FORK.Process(target=_run, args=(sender, fn, args, timeout_s, memory_mb), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(timeout_s):
            raise TimeoutError(f"still running after {timeout_s:g} s")
        ok, value = receiver.recv()
    except EOFError:
        child.join(5)
        raise ChildProcessError(f"the child process died (exit status {child.exitcode})") from None
    finally:
        if child.is_alive():
            child.kill()
        child.join(5)
        receiver.close()
    if ok:
        return value
    raise value


def _run(conn, fn: Callable[..., Any], args: tuple, timeout_s: float, memory_mb: int | None) -> None:
    """The child: limit itself, call, send back the result or the exception."""
    # A backstop for a parent that is gone: CPU seconds past the wall-clock limit end the child.
    cpu = math.ceil(timeout_s) + 1
    _lower_limit(resource.RLIMIT_CPU, cpu)
    held = _address_space()
    if memory_mb is not None and held:
        _lower_limit(resource.RLIMIT_AS, held + memory_mb * 2**20)
    try:
        answer: tuple[bool, Any] = (True, fn(*args))
    except MemoryError:
        answer = (False, MemoryError(f"needed more than {memory_mb} MiB"))
    except BaseException as exc:  # noqa: BLE001 - every outcome goes back to the parent
        answer = (False, exc)
    try:
        conn.send(answer)
    except Exception as exc:  # an answer that does not pickle
        conn.send((False, ChildProcessError(f"the answer could not be sent back ({type(exc).__name__})")))
    conn.close()


def _address_space() -> int:
    """Bytes of address space this process holds now (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _lower_limit(which: int, soft: int) -> None:
    """Lower a soft limit, never above the hard one; where that fails the limit is left as it was."""
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    try:
        resource.setrlimit(which, (soft, hard))
    except (ValueError, OSError):
        pass
