"""Stage train_baseline (condition 1): age regressor trained on general faces from `encoder_weights`, no pretext.

One run per training seed: `python stages/train_baseline.py --train-seed K` (dvc.yaml's foreach passes K)."""

from pipeline import artifacts, config, layout, phases, runtime, steps
from pipeline.models import AgeRegressor, build_encoder

# outs: models/train_baseline/seed<K>/model.pt, metrics/train/train_baseline/seed<K>.json,
#       metrics/history/train_baseline/seed<K>.csv


def main() -> None:
    cfg = config.load_training(config.TrainBaselineConfig, "train_baseline")  # cfg.seed: the training seed
    budget = config.load_section(config.BudgetConfig, "budget")
    device = runtime.setup(seed=cfg.seed, config=cfg, stage="train_baseline")
    model = AgeRegressor(build_encoder(cfg.encoder, cfg.encoder_weights))
    step = lambda m, b: steps.age_step(m, b, cfg.loss)  # noqa: E731
    metrics, history = phases.run_age_phases(model, layout.run_name("train_baseline", cfg.seed), ["general"],
                                             budget, cfg, device, step, cfg.lr_scale)
    artifacts.save_outputs("train_baseline", cfg.seed, model, "age", cfg.encoder, metrics, history,
                           trained_on=["general"])


if __name__ == "__main__":
    runtime.entry_point(main, "train_baseline")
