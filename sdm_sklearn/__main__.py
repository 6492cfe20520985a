"""Command line: ``python -m sdm_sklearn demo`` and ``... evaluate``."""

import argparse
import os
import sys

from ._cli import add_evaluate_parser, run_evaluate


def build_parser():
    """The argument parser of ``python -m sdm_sklearn``."""
    parser = argparse.ArgumentParser(
        prog="python -m sdm_sklearn",
        description="Selective classification with SDM activations.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="SDMClassifier versus softmax calibration on digits, in "
        "distribution, shifted and out of distribution",
    )
    demo.add_argument("--alpha", type=float, default=0.95)
    demo.add_argument("--random-state", type=int, default=0)
    demo.add_argument("--brief", action="store_true",
                      help="print only the summary table")
    add_evaluate_parser(commands)
    return parser


def main(argv=None):
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        run_demo(alpha=args.alpha, random_state=args.random_state,
                 tables=not args.brief)
    elif args.command == "evaluate":
        return run_evaluate(args)
    return 0


def _run():
    """Run :func:`main`; a reader that closes the pipe early ends it quietly."""
    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # e.g. `python -m sdm_sklearn demo | head`: send the rest of the
        # output nowhere so that the interpreter's final flush cannot fail
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(_run())
