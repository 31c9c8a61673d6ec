"""The photo-age control: how much of VCOP's pretext accuracy survives when the face carries no information, or when
the print's colour, exposure and grain are taken away, and whether condition 3's gain survives VCOP trained on
normalised photos.

    python benchmarks/photo_age_control.py --controls mask_face normalise --downstream normalise \
        --out benchmarks/results/photo_age_control.json

Run it in a finished run's folder (data/cache, data/splits, data/sequences, models/pretrain_vcop/seed<K> and
metrics/eval/predictions.csv from `dvc repro` or `dvc exp run`); it trains nothing into that run's outputs. For
every control and training seed it trains VCOP with params.yaml's pretrain_vcop recipe on the same tuples with
`pretrain_vcop.photo_control` set (pipeline.data.photo_control) and scores the pretext on the val tuples shown the
same way: top-1, top-3 and Kendall's tau beside chance. The run's own VCOP models give the `none` row. With
--downstream C, each seed's C-trained encoder is then trained for age as condition 3 is (same budget and phases),
and its Korean-test errors are paired with the run's finetune_korean per (training seed, photo): Δ MAE with a 95 %
CI over (training seed, person), beside the run's own downstream Δ.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import artifacts, checkpoint, config, metrics, phases, runtime, steps, train
from pipeline.data import intervals
from pipeline.data.cache import open_images
from pipeline.data.loaders import Loaders, read_split, tuple_loader
from pipeline.data.sequences import permutations
from pipeline.layout import CACHE, model_path, sequence_files, split_path
from pipeline.models import AgeRegressor, VCOPModel, build_encoder

log = logging.getLogger("photo_age_control")
PREDICTIONS = Path("metrics/eval/predictions.csv")
OUT_MODELS = Path(".checkpoints/photo_age_control")


def pretext(model: VCOPModel, images: np.ndarray, control: str, batch_size: int, device) -> dict:
    """The pretext scores of `model` on the val tuples shown with `control` (shuffled by the split seed)."""
    val = tuple_loader(images, "val", batch_size, config.split_seed(), device, train_mode=False, control=control)
    return metrics.pretext_metrics(*metrics.vcop_logits(model, val.epoch(0), device),
                                   permutations(val.dataset.tuple_len))


def train_vcop(images: np.ndarray, control: str, seed: int, device) -> VCOPModel:
    """pretrain_vcop's recipe for one training seed, on tuples shown with `control`."""
    cfg = replace(config.load_section(config.VCOPConfig, "pretrain_vcop"), seed=seed, photo_control=control)
    loaders = Loaders(
        train=tuple_loader(images, "train", cfg.batch_size, seed, device, True, cfg.num_workers, control),
        val=tuple_loader(images, "val", cfg.batch_size, config.split_seed(), device, False, cfg.num_workers,
                         control))
    model = VCOPModel(build_encoder(cfg.encoder, cfg.encoder_weights), loaders.train.dataset.tuple_len,
                      cfg.head_hidden, cfg.dropout)
    tag = f"vcop_{control}/seed{seed}"
    train.fit(model, loaders, steps.vcop_step, cfg, OUT_MODELS / tag, device, select="acc", maximize=True, tag=tag,
              fingerprint_parts=(checkpoint.input_digest(*sequence_files()), config.split_seed()))
    return model


def train_downstream(vcop: VCOPModel, control: str, seed: int, device) -> AgeRegressor:
    """Condition 3 from a controlled VCOP encoder: downstream's phases and budget."""
    cfg = replace(config.load_section(config.DownstreamConfig, "downstream"), seed=seed)
    budget = config.load_section(config.BudgetConfig, "budget")
    model = AgeRegressor(vcop.encoder)
    step = lambda m, b: steps.age_step(m, b, cfg.loss)  # noqa: E731
    phases.run_age_phases(model, f"photo_age_control/downstream_{control}/seed{seed}", ["general", "korean"], budget,
                          cfg, device, step, cfg.lr_scale, from_trained=True)
    return model


def paired(errors: np.ndarray, reference: np.ndarray, persons: np.ndarray, n_boot: int) -> dict:
    """Δ MAE (treated - reference) over (training seed, photo) with its (seed, person) CI."""
    return metrics.compare(errors, reference, persons, n_boot, config.split_seed())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--controls", nargs="+", default=["mask_face", "normalise"],
                        choices=["mask_face", "normalise"])
    parser.add_argument("--downstream", default="", choices=["", "mask_face", "normalise"],
                        help="also train condition 3 from this control's VCOP encoders and pair it with finetune_korean")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="training seeds (default: train_seeds)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/photo_age_control.json"))
    args = parser.parse_args(argv)
    seeds = args.seeds or config.train_seeds()
    device = runtime.setup(seed=0, stage="photo_age_control")
    evaluate = config.load_section(config.EvalConfig, "evaluate")
    images = open_images(CACHE)
    started = time.monotonic()
    out: dict = {"seeds": seeds, "pretext": {}, "minutes": {}}
    out["pretext"]["none"] = {str(s): pretext(artifacts.load_vcop_model(model_path("pretrain_vcop", s), "control"),
                                              images, "none", evaluate.batch_size, device) for s in seeds}
    encoders: dict[tuple[str, int], VCOPModel] = {}
    for control in args.controls:
        t0 = time.monotonic()
        out["pretext"][control] = {}
        for seed in seeds:
            encoders[control, seed] = train_vcop(images, control, seed, device)
            out["pretext"][control][str(seed)] = pretext(encoders[control, seed], images, control,
                                                         evaluate.batch_size, device)
            log.info("%s seed %d: %s", control, seed, out["pretext"][control][str(seed)])
        out["minutes"][f"vcop_{control}"] = round((time.monotonic() - t0) / 60, 1)
    out["pretext_mean"] = {c: {k: float(np.mean([r[k] for r in runs.values()]))
                               for k in ("val_acc", "val_top3", "val_kendall_tau", "chance_acc", "chance_top3")}
                           for c, runs in out["pretext"].items()}
    if args.downstream:
        t0 = time.monotonic()
        korean = read_split(split_path("korean_test"))
        persons = korean["person_id"].to_numpy()
        preds = {}
        for seed in seeds:
            vcop = encoders.get((args.downstream, seed)) or train_vcop(images, args.downstream, seed, device)
            model = train_downstream(vcop, args.downstream, seed, device)
            preds[seed] = metrics.predict_years(model, images, korean["cache_row"].to_numpy(), device,
                                                evaluate.batch_size, evaluate.mirror_average).round(2)  # as the run's
        if not PREDICTIONS.exists():  # the run is still training: its finished checkpoints make the rerun quick
            runtime.write_json(args.out, out)
            log.warning("%s not found: the control's models are trained; run this again once the run's evaluate "
                        "has written it to pair them", PREDICTIONS)
            return 0
        run = pd.read_csv(PREDICTIONS, dtype={"person_id": str})
        err = {name: [] for name in ("treated", "finetune_korean", "downstream")}
        for seed, pred in preds.items():
            rows = run[run["seed"] == seed].sort_values("photo")
            if not np.array_equal(rows["person_id"].to_numpy(), persons):
                raise SystemExit(f"{PREDICTIONS}: seed {seed}'s rows are not this run's Korean test photos")
            err["treated"].append(intervals.table_abs_error(pred, korean))
            for name in ("finetune_korean", "downstream"):
                err[name].append(intervals.table_abs_error(rows[name].to_numpy(), korean))
        stacked = {k: np.stack(v) for k, v in err.items()}
        out["downstream"] = {
            "control": args.downstream,
            "mae": {k: float(v.mean()) for k, v in stacked.items()},
            f"downstream_{args.downstream}_vs_finetune_korean": paired(stacked["treated"], stacked["finetune_korean"],
                                                                       persons, evaluate.n_bootstrap),
            "downstream_vs_finetune_korean": paired(stacked["downstream"], stacked["finetune_korean"], persons,
                                                    evaluate.n_bootstrap)}
        out["minutes"][f"downstream_{args.downstream}"] = round((time.monotonic() - t0) / 60, 1)
    out["minutes"]["total"] = round((time.monotonic() - started) / 60, 1)
    runtime.write_json(args.out, out)
    print(json.dumps({"pretext_mean": out["pretext_mean"], "downstream": out.get("downstream")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
