# Two commands do all set-up on a fresh clone:  `make app`  and  `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: app test index eval install clean

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# constraints.txt pins the CPU build of torch (never the multi-GB CUDA one).
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

index: $(STAMP)
	$(PY) -m ingest

app: index
	$(VENV)/bin/streamlit run app.py --server.headless true

test: $(STAMP)
	$(PY) -m pytest

eval: $(STAMP)
	$(PY) -m eval

clean:
	rm -rf $(VENV) index
