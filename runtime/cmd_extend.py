"""``qvaf extend``: grow a saved model's kan layers to more data re-uploads, keeping its function.

Examples::

    qvaf extend runs/expsin --reps 5 --out models/expsin-r5
    qvaf extend models/net --reps 8 --layer layer1 --out models/net-r8 --json

The result is a model checkpoint (the format of ``qvaf.save``): ``qvaf eval``, ``qvaf plot``,
``qvaf export`` and ``qvaf.restore`` read it. Growth follows the reference's ``refine()``
(see :mod:`qvaf.runtime.extend`); an ansatz whose growth would change the function is refused
with the gate that breaks it.
"""

from __future__ import annotations

import json


def add_parser(subparsers) -> None:
    """Register ``extend``."""
    p = subparsers.add_parser("extend", help="grow a saved model to more re-uploads (function unchanged)",
                              description="Grow the kan layers of a saved run or model to --reps data re-uploads "
                                          "as the reference's refine() does, check that the function is unchanged "
                                          "and save the grown model as a new checkpoint in --out.")
    p.add_argument("checkpoint", metavar="CKPT", help="a run directory, a checkpoint or a folder from qvaf.save")
    p.add_argument("--reps", type=int, required=True, help="the new number of re-uploads (>= the current one)")
    p.add_argument("--layer", action="append", default=None, metavar="ID",
                   help="grow only this kan layer, e.g. layer1 (repeatable; default: every kan layer)")
    p.add_argument("--out", required=True, help="folder of the grown model (must not hold a run or model)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=run_extend)


def run_extend(args) -> int:
    from .extend import ExtendError, extend_saved

    if args.reps < 1:
        raise ExtendError(f"--reps must be a positive integer, got {args.reps}")
    report = extend_saved(args.checkpoint, args.reps, args.out, args.layer or "*")
    if args.json:
        print(json.dumps(report))
        return 0
    if not report["layers"]:
        print(f"nothing to grow: every layer already has reps {args.reps}; saved a copy in {report['saved']}")
        return 0
    grown = ", ".join(f"{lid} {r['before']} -> {r['after']}" for lid, r in report["layers"].items())
    print(f"extended {grown} ({report['params']['before']} -> {report['params']['after']} parameters); "
          f"outputs unchanged to {report['max_output_change']:.2g}")
    print(f"saved: {report['saved']}")
    return 0
