"""gunicorn settings for the API: ``gunicorn -w 4 -b 0.0.0.0:8000 wsgi:app`` (``gunicorn.conf.py`` in the
repository root loads this module; ``-c python:service.gunicorn_conf`` names it from anywhere).

* a worker timeout and a graceful timeout above the longest ``?wait=``: a
  sync worker serving ``POST /v1/documents?wait=60`` is busy for the whole
  wait, and gunicorn's default 30 s would kill it half way; on SIGTERM the
  workers stop accepting connections and finish the requests in hand;
* gunicorn's own lines (boot, worker timeouts, the access log if turned on)
  in the format ``DOCKET_LOG_FORMAT`` names, like the app's;
* under Prometheus multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, which
  ``GET /metrics`` then aggregates), a worker that exits is marked dead, so
  its live gauges drop out while its counters and histograms keep counting.
"""

from __future__ import annotations

import os

from gunicorn.glogging import Logger
from prometheus_client import multiprocess

from config.settings import get_settings
from service.api.schemas import MAX_WAIT_S
from service.logs import make_formatter

__all__ = ["child_exit", "graceful_timeout", "logger_class", "timeout"]  # the gunicorn settings

timeout = MAX_WAIT_S + 30  # seconds a worker may be silent (in one request) before it is killed and replaced
graceful_timeout = MAX_WAIT_S + 15  # seconds after SIGTERM for in-flight requests to finish


class GunicornLogger(Logger):
    """gunicorn's logger, its handlers given Docket's formatter."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        formatter = make_formatter(get_settings().log_format)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)


logger_class = GunicornLogger


def child_exit(_server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
