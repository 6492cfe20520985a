"""Command line: ``python -m sdm_sklearn demo`` and ``... evaluate``."""

import argparse
import os
import sys
import warnings

from ._cli import (
    add_evaluate_parser,
    parse_alpha,
    parse_seed,
    print_warnings,
    run_evaluate,
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one ``prog: error:`` line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def build_parser():
    """The argument parser of ``python -m sdm_sklearn``."""
    parser = _Parser(
        prog="python -m sdm_sklearn",
        description="Selective classification with SDM activations.",
    )
    commands = parser.add_subparsers(dest="command", required=True,
                                     metavar="{demo,evaluate}")
    demo = commands.add_parser(
        "demo",
        help="SDMClassifier versus softmax calibration on digits, in "
        "distribution, shifted and out of distribution",
        description="Fit SDMClassifier and softmax-probability thresholds "
        "(plain and CalibratedClassifierCV) on digits and print a summary "
        "of what each admits on an in-distribution, a shifted and an "
        "out-of-distribution test set, a legend and a conclusion; "
        "warnings follow as 'warning: ...' lines on stderr. Exit "
        "status 2, with one line on stderr, for an invalid option.",
    )
    demo.add_argument("--alpha", type=parse_alpha, default=0.9, metavar="A",
                      help="target accuracy, in (0.5, 1] (default 0.9)")
    demo.add_argument("--random-state", type=parse_seed, default=0,
                      metavar="N",
                      help="seed of the split, the corruptions and "
                      "SDMClassifier, in [0, 2**32 - 1] (default 0)")
    demo.add_argument("--tables", action="store_true",
                      help="also print the selective table (per class and "
                      "per prediction) of every estimator on every test set")
    add_evaluate_parser(commands)
    return parser


def main(argv=None):
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        with warnings.catch_warnings(record=True) as caught:
            run_demo(alpha=args.alpha, random_state=args.random_state,
                     tables=args.tables)
        print_warnings(caught)
    elif args.command == "evaluate":
        return run_evaluate(args)
    return 0


def _run():
    """Run :func:`main`; a reader that closes the pipe early ends it quietly."""
    # Progress lines of long fits appear as they are printed, even in a pipe.
    sys.stdout.reconfigure(line_buffering=True)
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
