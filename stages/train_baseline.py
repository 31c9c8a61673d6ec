"""Stage train_baseline (condition 1): age regressor trained on general faces from scratch, no pretext."""

from pipeline import conditions, config, runtime, train
from pipeline.models import AgeRegressor, build_encoder, list_encoders

# outs: models/train_baseline/model.pt, metrics/train/train_baseline.json, metrics/history/train_baseline.csv


def main() -> None:
    cfg = config.load_section(config.AgeModelConfig, "train_baseline")
    if not cfg.encoder:
        raise config.ConfigError("params.yaml:train_baseline.encoder: required; one of "
                                 f"{list_encoders()}")
    budget = conditions.budget(cfg.seed)
    device = runtime.setup(seed=cfg.seed, config=cfg, stage="train_baseline")
    model = AgeRegressor(build_encoder(cfg.encoder))
    step = lambda m, b: train.age_step(m, b, cfg.loss)  # noqa: E731
    metrics, history = conditions.run_age_phases(model, "train_baseline", ["general"], budget, cfg, device,
                                                 step, cfg.lr_scale)
    conditions.save_outputs("train_baseline", model, "age", cfg.encoder, metrics, history)


if __name__ == "__main__":
    main()
