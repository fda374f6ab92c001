"""Generation speed at batch 1: prefill latency and decode tokens/s (decode excludes the prefill)."""
import time


def timed(function):
    """Wall seconds of one call."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def generation_speed(network, prompt, new_tokens=128, repeats=3):
    """Time `network.generate` on one prompt (a list of token ids) after a warm-up that compiles the graphs;
    the fastest of `repeats` runs counts (the least disturbed by other work on the machine).

    Returns {'prompt_tokens', 'new_tokens', 'prefill_s', 'total_s', 'decode_tokens_per_s'}.
    """
    run = lambda n: network.generate([list(prompt)], max_new_tokens=n, eos_token_id=-1)  # noqa: E731
    run(2)  # GRAPH_MODE compiles the prefill and decode graphs here; PyNative warms its kernels
    prefill = min(timed(lambda: run(1)) for _ in range(repeats))
    total = min(timed(lambda: run(new_tokens)) for _ in range(repeats))
    return {"prompt_tokens": len(prompt), "new_tokens": new_tokens, "prefill_s": prefill, "total_s": total,
            "decode_tokens_per_s": (new_tokens - 1) / (total - prefill)}
