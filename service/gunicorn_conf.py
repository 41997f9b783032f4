"""gunicorn settings for the API: ``gunicorn -c python:service.gunicorn_conf -w 4 -b 0.0.0.0:8000 wsgi:app``.

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
from service.logs import make_formatter


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
