"""Stage finetune_korean (condition 2): the baseline fine-tuned on the labelled Korean training persons."""

from pipeline import conditions, config, runtime, train

BASELINE = conditions.model_path("train_baseline")
# outs: models/finetune_korean/model.pt, metrics/train/finetune_korean.json, metrics/history/finetune_korean.csv


def main() -> None:
    cfg = config.load_section(config.AgeModelConfig, "finetune_korean")
    budget = conditions.budget(cfg.seed)
    device = runtime.setup(seed=cfg.seed, config=cfg, stage="finetune_korean")
    model, encoder = conditions.load_age_model(BASELINE, needed_by="finetune_korean")
    step = lambda m, b: train.age_step(m, b, cfg.loss)  # noqa: E731
    metrics, history = conditions.run_age_phases(model, "finetune_korean", ["korean"], budget, cfg, device,
                                                 step, cfg.lr_scale)
    conditions.save_outputs("finetune_korean", model, "age", encoder, metrics, history)


if __name__ == "__main__":
    main()
