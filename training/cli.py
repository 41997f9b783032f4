"""`docket train`: fine-tune a model.

    docket train --bootstrap [--install]   reproduce the default adapter from scratch (seeded)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from config.settings import ROOT
from training.bootstrap import BootstrapConfig, run


def main() -> None:
    parser = argparse.ArgumentParser(prog="docket train", description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", action="store_true", help="synthetic data + training split of ../shared/data → adapter")
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bootstrap")
    parser.add_argument("--install", action="store_true", help="make the new adapter the repository's default")
    parser.add_argument("--seed", type=int, default=BootstrapConfig.seed)
    args = parser.parse_args()
    if not args.bootstrap:
        parser.error("only --bootstrap is available so far; retraining from approved reviews comes with the learning loop")
    print(run(args.out, BootstrapConfig(seed=args.seed), install=args.install))


if __name__ == "__main__":
    main()
