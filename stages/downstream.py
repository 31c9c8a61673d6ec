"""Stage downstream (condition 3): the VCOP-pretrained encoder trained for age with condition 1+2's labels and budget.

One run per training seed K, from pretrain_vcop's run K (dvc.yaml's foreach passes --train-seed K)."""

from pipeline import artifacts, config, layout, phases, runtime, steps
from pipeline.models import AgeRegressor

# deps: models/pretrain_vcop/seed<K>/model.pt
# outs: models/downstream/seed<K>/model.pt, metrics/train/downstream/seed<K>.json,
#       metrics/history/downstream/seed<K>.csv
PHASES = {"general_then_korean": ["general", "korean"], "korean_only": ["korean"],
          "linear_probe": ["general", "korean"]}


def main() -> None:
    cfg = config.load_training(config.DownstreamConfig, "downstream")  # cfg.seed: the training seed
    budget = config.load_section(config.BudgetConfig, "budget")
    device = runtime.setup(seed=cfg.seed, config=cfg, stage="downstream")
    encoder_name, encoder = artifacts.load_vcop_encoder(layout.model_path("pretrain_vcop", cfg.seed), cfg.encoder,
                                                        needed_by="downstream")
    model = AgeRegressor(encoder)
    if cfg.protocol == "linear_probe":  # how much age do the order features carry linearly? Only the head trains
        model.freeze_encoder()
    step = lambda m, b: steps.age_step(m, b, cfg.loss)  # noqa: E731
    metrics, history = phases.run_age_phases(model, layout.run_name("downstream", cfg.seed), PHASES[cfg.protocol],
                                             budget, cfg, device, step, cfg.lr_scale,
                                             from_trained=True)  # the VCOP encoder is trained
    artifacts.save_outputs("downstream", cfg.seed, model, "age", encoder_name, metrics, history,
                           trained_on=PHASES[cfg.protocol])


if __name__ == "__main__":
    runtime.entry_point(main, "downstream")
