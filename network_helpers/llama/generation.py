"""Generation with the static KV cache: one prefill, then one decode step per new token."""
import numpy as np
from mindspore import Tensor


def _strip_padding(input_ids, pad_token_id):
    """List of 1-D prompts from a list of lists or a right-padded 2-D array."""
    if isinstance(input_ids, np.ndarray) and input_ids.ndim == 1:
        input_ids = input_ids[None]
    prompts = []
    for row in input_ids:
        row = np.asarray(row, dtype=np.int64).reshape(-1)
        valid = np.flatnonzero(row != pad_token_id)
        prompts.append(row[: valid[-1] + 1] if valid.size else row[:0])
    return prompts


def _choose_tokens(logits, rng, do_sample, temperature, top_k, top_p):
    """Greedy argmax, or sampling from the temperature/top-k/top-p filtered distribution."""
    if not do_sample:
        return logits.argmax(-1)
    logits = logits / max(temperature, 1e-6)
    tokens = []
    for row in logits:
        order = np.argsort(-row)[: top_k if top_k and top_k > 0 else None]
        probs = np.exp(row[order] - row[order[0]])
        probs /= probs.sum()
        keep = max(1, int(np.searchsorted(np.cumsum(probs), top_p) + 1))
        probs = probs[:keep] / probs[:keep].sum()
        tokens.append(order[rng.choice(keep, p=probs)])
    return np.asarray(tokens)


def generate(network, input_ids, max_new_tokens=None, max_length=None, do_sample=False, temperature=1.0,
             top_k=0, top_p=1.0, eos_token_id=None, pad_token_id=None, prefill_bucket=128, seed=0, stop=None):
    """Generate up to `max_new_tokens` after each prompt; returns a list of prompt + new token arrays.

    Prompts are right-padded to a multiple of `prefill_bucket`, so GRAPH_MODE compiles one prefill graph per
    bucket and one decode graph. Rows stop at `eos_token_id` (kept in the output), or once `stop(new_tokens)`
    returns True for the row's generated tokens so far.
    """
    args = network.args
    pad_token_id = args.pad_token_id if pad_token_id is None else pad_token_id
    eos_token_id = args.eos_token_id if eos_token_id is None else eos_token_id
    prompts = _strip_padding(input_ids, pad_token_id)
    if not prompts or len(prompts) > args.batch_size:
        raise ValueError(f"generate got {len(prompts)} prompt(s); the network's batch_size is {args.batch_size}")
    if min(len(p) for p in prompts) == 0:
        raise ValueError("generate got an empty prompt")
    longest = max(len(p) for p in prompts)
    limit = min(max_length or args.seq_length, args.seq_length)
    max_new_tokens = limit - longest if max_new_tokens is None else min(max_new_tokens, limit - longest)
    if max_new_tokens <= 0:
        raise ValueError(f"a prompt of {longest} tokens leaves no room to generate within max_length {limit} "
                         f"(model_config.seq_length {args.seq_length})")
    rows = prompts + [prompts[0]] * (args.batch_size - len(prompts))  # fill the cache's batch
    width = min(-(-longest // prefill_bucket) * prefill_bucket, args.seq_length)
    batch = np.full((args.batch_size, width), pad_token_id, np.int32)
    for i, prompt in enumerate(rows):
        batch[i, : len(prompt)] = prompt
    lengths = np.array([len(p) for p in rows], np.int32)
    rng = np.random.default_rng(seed)
    logits = network(Tensor(batch), Tensor(lengths)).asnumpy()
    outputs = [list(p) for p in prompts]
    done = np.zeros(len(prompts), bool)
    for step in range(max_new_tokens):
        tokens = _choose_tokens(logits, rng, do_sample, temperature, top_k, top_p)
        for i in np.flatnonzero(~done):
            outputs[i].append(int(tokens[i]))
            done[i] = tokens[i] == eos_token_id or (stop is not None and stop(outputs[i][len(prompts[i]):]))
        if done.all() or step == max_new_tokens - 1:
            break
        lengths = lengths + 1
        logits = network(Tensor(tokens.reshape(-1, 1).astype(np.int32)), Tensor(lengths)).asnumpy()
    return [np.asarray(o, np.int32) for o in outputs]
