"""Generation with the static KV cache: prefill in fixed-width chunks, then one decode step per new token."""
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


def choose_tokens(logits, rng, do_sample, temperature, top_k, top_p):
    """Greedy argmax, or sampling from the temperature/top-k/top-p filtered distribution."""
    if not do_sample:
        return logits.argmax(-1)
    logits = logits / max(temperature, 1e-6)
    tokens = []
    for row in logits:
        order = np.argsort(-row)[: top_k if top_k and top_k > 0 else None]
        probs = np.exp(row[order] - row[order[0]])
        probs /= probs.sum()
        # the smallest prefix holding top_p of the mass; a float cumsum may end just below 1.0 (top_p=1: all)
        keep = min(len(order), max(1, int(np.searchsorted(np.cumsum(probs), top_p) + 1)))
        probs = probs[:keep] / probs[:keep].sum()
        tokens.append(order[rng.choice(keep, p=probs)])
    return np.asarray(tokens)


def chunk_starts(longest, chunk, seq_length):
    """Start positions of the prefill chunks covering `longest` tokens; the last one is pulled back so that it
    ends inside the cache (re-writing positions it overlaps with the same values)."""
    starts = list(range(0, longest, chunk))
    return [min(start, seq_length - chunk) for start in starts]


def prefill(network, batch, lengths, chunk):
    """Fill the KV cache from right-padded prompts `batch` (B, W) in chunks of `chunk` tokens (one GRAPH_MODE
    graph for any prompt length); returns the logits (B, V) at each row's last prompt token."""
    args = network.args
    chunk = min(chunk, args.seq_length)
    starts = chunk_starts(int(lengths.max()), chunk, args.seq_length)
    padded = np.full((batch.shape[0], max(starts) + chunk), args.pad_token_id, np.int32)  # every chunk full width
    padded[:, :batch.shape[1]] = batch
    logits = None
    for start in starts:
        starts = np.full(len(lengths), start, np.int32)
        chunk_logits = network(Tensor(padded[:, start:start + chunk]), Tensor(lengths), Tensor(starts)).asnumpy()
        holds_last = (start <= lengths - 1) & (lengths - 1 < start + chunk)
        logits = chunk_logits if logits is None else np.where(holds_last[:, None], chunk_logits, logits)
    return logits


def generate(network, input_ids, max_new_tokens=None, max_length=None, do_sample=False, temperature=1.0,
             top_k=0, top_p=1.0, eos_token_id=None, pad_token_id=None, prefill_chunk=128, seed=0, stop=None):
    """Generate up to `max_new_tokens` after each prompt; returns a list of prompt + new token arrays.

    Prompts are prefilled in chunks of `prefill_chunk` tokens, so GRAPH_MODE compiles one prefill graph and one
    decode graph whatever the prompt lengths. Rows stop at `eos_token_id` (kept in the output), or once
    `stop(new_tokens)` returns True for the row's generated tokens so far.
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
    batch = np.full((args.batch_size, longest), pad_token_id, np.int32)
    for i, prompt in enumerate(rows):
        batch[i, : len(prompt)] = prompt
    lengths = np.array([len(p) for p in rows], np.int32)
    rng = np.random.default_rng(seed)
    logits = prefill(network, batch, lengths, prefill_chunk)
    outputs = [list(p) for p in prompts]
    done = np.zeros(len(prompts), bool)
    for step in range(max_new_tokens):
        tokens = choose_tokens(logits, rng, do_sample, temperature, top_k, top_p)
        for i in np.flatnonzero(~done):
            outputs[i].append(int(tokens[i]))
            done[i] = tokens[i] == eos_token_id or (stop is not None and stop(outputs[i][len(prompts[i]):]))
        if done.all() or step == max_new_tokens - 1:
            break
        lengths = lengths + 1
        logits = network(Tensor(tokens.reshape(-1, 1).astype(np.int32)), Tensor(lengths)).asnumpy()
    return [np.asarray(o, np.int32) for o in outputs]
