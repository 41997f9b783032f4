"""`docket train`: retrain from approved reviews, or reproduce the default adapter.

    docket train [--steps N] [--replay N] [--eval-shared N] [--no-wait]
        queue a retraining run (the rq job on the training queue) and follow it
        with a progress bar: step, loss, ETA. With no worker on the training
        queue, the run is worked here, in this process.
    docket train --bootstrap [--install]   reproduce the default adapter from scratch (seeded)
    docket train --bootstrap --refresh ADAPTER [--install]
        continue a bootstrap adapter on a smaller sample of the current mix
    docket train --bootstrap --recalibrate ADAPTER
        refit an adapter's confidence calibration in place (after a decoding change)
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from rq import Queue, Worker
from tqdm import tqdm

from config.settings import ROOT, get_settings
from service.db import Database
from service.exceptions import DocketError
from service.models import DONE, FAILED
from service.queue import TRAINING, connect_redis
from service.tasks import init_runtime, make_worker
from service.training_runs import get_run, request_run
from training.bootstrap import REFRESH, BootstrapConfig, recalibrate, run

POLL_S = 1.0


def finished_bar(losses: list[float]) -> None:
    """A training bar drawn complete, from the loss curve the run kept (one point a step, thinned past 500)."""
    bar = tqdm(total=len(losses), initial=len(losses), desc="training", unit="step", dynamic_ncols=True)
    bar.set_postfix_str(f"loss {losses[-1]:.4f}")
    bar.close()


def follow(database: Database, run_id: int) -> str:
    """Show a run's stages, log lines and a progress bar until it ends; return its final status."""
    bar: tqdm | None = None
    printed, stage, bar_shown = 0, None, False
    while True:
        with database.session() as session:
            run_row = get_run(session, run_id)
            status, progress, log, error = run_row.status, dict(run_row.progress or {}), run_row.log or "", run_row.error
            losses = list((run_row.metrics or {}).get("loss") or [])
        lines = log.splitlines()
        for line in lines[printed:]:
            (bar.write if bar else print)(line)
        printed = len(lines)
        if progress.get("stage") != stage:
            stage = progress.get("stage")
            if bar is not None:  # training is over once a later stage has begun
                bar.update(bar.total - bar.n)
                bar.close()
                bar = None
            elif not bar_shown and stage not in (None, "data", "train") and losses:
                finished_bar(losses)  # training ended between two looks: show it done, not never
                bar_shown = True
        if stage == "train" and progress.get("total"):
            if bar is None:
                bar = tqdm(total=progress["total"], desc="training", unit="step", dynamic_ncols=True)
                bar_shown = True
            bar.update(progress["step"] - bar.n)
            bar.set_postfix_str(f"loss {progress['loss']:.4f}, eta {int(progress.get('eta_s', 0)) // 60}m"
                                f"{int(progress.get('eta_s', 0)) % 60:02d}s")
        if status in (DONE, FAILED):
            if bar is not None:
                bar.close()
            if error:
                print(f"run {run_id} failed: {error}", file=sys.stderr)
            return status
        time.sleep(POLL_S)


def retrain_command(args: argparse.Namespace) -> int:
    settings = get_settings()
    database = Database(settings.database_uri)
    connection = connect_redis(settings)
    params = {k: v for k, v in {"seed": args.seed, "steps": args.steps, "replay": args.replay,
                                "eval_shared": args.eval_shared}.items() if v is not None}
    try:
        with database.session() as session:
            run_id = request_run(session, connection, settings, "cli", params).id
    except DocketError as exc:
        print(exc.detail, file=sys.stderr)
        return 1
    print(f"training run {run_id} queued")
    if args.no_wait:
        return 0
    here = not Worker.all(queue=Queue(TRAINING, connection=connection))
    if here:
        print("no worker serves the training queue: working the run in this process")
        init_runtime(settings)
        status_box: dict[str, str] = {}
        follower = threading.Thread(target=lambda: status_box.update(status=follow(database, run_id)), daemon=True)
        follower.start()
        make_worker(connection, (TRAINING,)).work(burst=True, logging_level="WARNING")
        follower.join()
        status = status_box.get("status", FAILED)
    else:
        status = follow(database, run_id)
    with database.session() as session:
        row = get_run(session, run_id)
        gate = (row.metrics or {}).get("gate") or {}
        if status == DONE:
            print(f"{row.output_model_version}: {gate.get('decision', '?')}"
                  + ("" if gate.get("decision") == "promote" else " — " + "; ".join(gate.get("reasons", []))))
    database.dispose()
    return 0 if status == DONE else 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="docket train", description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", action="store_true", help="synthetic data + training split of ../shared/data → adapter")
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bootstrap", help="--bootstrap: output folder")
    parser.add_argument("--install", action="store_true", help="--bootstrap: make the new adapter the repository's default")
    parser.add_argument("--refresh", type=Path, default=None, metavar="ADAPTER",
                        help="--bootstrap: continue this adapter on the refresh mix instead of starting from scratch")
    parser.add_argument("--recalibrate", type=Path, default=None, metavar="ADAPTER",
                        help="--bootstrap: refit this adapter's calibration in place, without training")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: one pass over the mix)")
    parser.add_argument("--replay", type=int, default=None, help="earlier training examples mixed in")
    parser.add_argument("--eval-shared", type=int, default=None, help="documents per ../shared/data eval split to guard on")
    parser.add_argument("--no-wait", action="store_true", help="queue the run and return")
    args = parser.parse_args()
    if args.bootstrap and args.recalibrate:
        recalibrate(args.recalibrate, args.out)
        return
    if args.bootstrap:
        mix = REFRESH if args.refresh else BootstrapConfig()
        cfg = BootstrapConfig(**{**asdict(mix), "seed": args.seed or mix.seed})
        print(run(args.out, cfg, install=args.install, init_adapter=args.refresh))
        return
    sys.exit(retrain_command(args))


if __name__ == "__main__":
    main()
