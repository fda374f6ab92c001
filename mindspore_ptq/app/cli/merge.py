"""Merge the per-rank checkpoints of a tensor-parallel quantization into one checkpoint.

    mindspore-ptq merge outputs/a8w8c8/a8w8c8.shards.json [--compare outputs/tp1/a8w8c8.ckpt]
"""
from ...io.sharding import compare, merge


def add_arguments(parser):
    parser.add_argument("manifest", help="<name>.shards.json written by a tensor-parallel quantization")
    parser.add_argument("--output", default=None, help="merged checkpoint (default: <name>.ckpt beside it)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing merged checkpoint")
    parser.add_argument("--compare", default=None, help="report how the merged checkpoint differs from this one")


def run(args):
    merged = merge(args.manifest, args.output, args.overwrite)
    print(merged)
    if args.compare:
        report = compare(merged, args.compare)
        differing, total, step = report["int8"]
        relative, worst = report["float"]
        print(f"int8 values: {differing} of {total} differ ({differing / max(total, 1):.2e}), by at most {step}; "
              f"float parameters: largest |difference| / max |value| {relative:.2e}" + (f" ({worst})" if worst else ""))
    return merged
