#!/usr/bin/env bash
# Quantize under msrun: WORKERS=1 bash example/ptq/quant_ckpt.sh --approach a8w8c8 --n_samples 64
exec bash "$(dirname "$0")/msrun.sh" "$(dirname "$0")/quant_ckpt.py" "$@"
