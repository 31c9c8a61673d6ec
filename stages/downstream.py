"""Stage downstream (condition 3): the VCOP-pretrained encoder trained for age with condition 1+2's labels and budget."""

from pipeline import artifacts, config, layout, phases, runtime, train
from pipeline.models import AgeRegressor

VCOP = layout.model_path("pretrain_vcop")
# outs: models/downstream/model.pt, metrics/train/downstream.json, metrics/history/downstream.csv
PHASES = {"general_then_korean": ["general", "korean"], "korean_only": ["korean"],
          "linear_probe": ["general", "korean"]}


def main() -> None:
    cfg = config.load_section(config.DownstreamConfig, "downstream")
    budget = config.load_section(config.BudgetConfig, "budget")
    device = runtime.setup(seed=cfg.seed, config=cfg, stage="downstream")
    encoder_name, encoder = artifacts.load_vcop_encoder(VCOP, cfg.encoder, needed_by="downstream")
    model = AgeRegressor(encoder)
    if cfg.protocol == "linear_probe":  # how much age do the order features carry linearly? Only the head trains
        model.freeze_encoder()
    step = lambda m, b: train.age_step(m, b, cfg.loss)  # noqa: E731
    metrics, history = phases.run_age_phases(model, "downstream", PHASES[cfg.protocol], budget, cfg, device, step,
                                             cfg.lr_scale, from_trained=True)  # the VCOP encoder is trained
    artifacts.save_outputs("downstream", model, "age", encoder_name, metrics, history,
                           trained_on=PHASES[cfg.protocol])


if __name__ == "__main__":
    main()
