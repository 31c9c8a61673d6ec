"""Stage downstream (condition 3): the VCOP-pretrained encoder trained for age with condition 1+2's labels and budget."""

from pipeline import conditions, config, runtime, train
from pipeline.models import AgeRegressor

VCOP = conditions.model_path("pretrain_vcop")
# outs: models/downstream/model.pt, metrics/train/downstream.json, metrics/history/downstream.csv
PHASES = {"general_then_korean": ["general", "korean"], "korean_only": ["korean"],
          "linear_probe": ["general", "korean"]}


def main() -> None:
    cfg = config.load_section(config.AgeModelConfig, "downstream")
    budget = conditions.budget(cfg.seed)
    device = runtime.setup(seed=cfg.seed, config=cfg, stage="downstream")
    encoder_name, encoder = conditions.load_vcop_encoder(VCOP, cfg.encoder, needed_by="downstream")
    model = AgeRegressor(encoder)
    if cfg.protocol == "linear_probe":  # frozen order features: how much age do they carry linearly?
        model.encoder.requires_grad_(False)
    step = lambda m, b: train.age_step(m, b, cfg.loss)  # noqa: E731
    metrics, history = conditions.run_age_phases(model, "downstream", PHASES[cfg.protocol], budget, cfg,
                                                 device, step, cfg.lr_scale)
    conditions.save_outputs("downstream", model, "age", encoder_name, metrics, history)


if __name__ == "__main__":
    main()
