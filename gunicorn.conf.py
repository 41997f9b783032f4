"""gunicorn's settings for ``gunicorn wsgi:app``, read from the working directory (flags override them).

A sync worker serving ``POST /v1/documents?wait=60`` is busy for the whole
wait: gunicorn's default 30-second worker timeout would kill it half way. On
SIGTERM the workers stop accepting connections and finish the requests in
hand; ``graceful_timeout`` is how long they get before they are killed, so it
too outlasts the longest wait.
"""

from service.api.schemas import MAX_WAIT_S

timeout = MAX_WAIT_S + 30  # seconds a worker may be silent (in one request) before it is killed and replaced
graceful_timeout = MAX_WAIT_S + 15  # seconds after SIGTERM for in-flight requests to finish
