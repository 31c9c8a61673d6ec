"""Stage finetune_korean (condition 2): the baseline fine-tuned on the labelled Korean training persons."""

from pipeline import artifacts, config, layout, phases, runtime, train

BASELINE = layout.model_path("train_baseline")
# outs: models/finetune_korean/model.pt, metrics/train/finetune_korean.json, metrics/history/finetune_korean.csv


def main() -> None:
    cfg = config.load_section(config.FinetuneKoreanConfig, "finetune_korean")
    budget = config.load_section(config.BudgetConfig, "budget")
    device = runtime.setup(seed=cfg.seed, config=cfg, stage="finetune_korean")
    model, encoder = artifacts.load_age_model(BASELINE, needed_by="finetune_korean")
    step = lambda m, b: train.age_step(m, b, cfg.loss)  # noqa: E731
    metrics, history = phases.run_age_phases(model, "finetune_korean", ["korean"], budget, cfg, device, step,
                                             cfg.lr_scale, from_trained=True)
    # trained_on: the baseline it starts from learned the general ages
    artifacts.save_outputs("finetune_korean", model, "age", encoder, metrics, history, trained_on=["general", "korean"])


if __name__ == "__main__":
    main()
