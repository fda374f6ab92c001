#!/usr/bin/env bash
# Evaluate under msrun: WORKERS=1 bash example/ptq/eval_squad.sh --load_checkpoint outputs/a8w8c8/a8w8c8.ckpt
exec bash "$(dirname "$0")/msrun.sh" "$(dirname "$0")/eval_squad.py" "$@"
