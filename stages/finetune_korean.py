"""Stage finetune_korean (condition 2): the baseline fine-tuned on the labelled Korean training persons.

One run per training seed K, from train_baseline's run K (dvc.yaml's foreach passes --train-seed K)."""

from pipeline import artifacts, config, layout, phases, runtime, steps

# deps: models/train_baseline/seed<K>/model.pt
# outs: models/finetune_korean/seed<K>/model.pt, metrics/train/finetune_korean/seed<K>.json,
#       metrics/history/finetune_korean/seed<K>.csv


def main() -> None:
    cfg = config.load_training(config.FinetuneKoreanConfig, "finetune_korean")  # cfg.seed: the training seed
    budget = config.load_section(config.BudgetConfig, "budget")
    device = runtime.setup(seed=cfg.seed, config=cfg, stage="finetune_korean")
    model, encoder = artifacts.load_age_model(layout.model_path("train_baseline", cfg.seed),
                                              needed_by="finetune_korean")
    step = lambda m, b: steps.age_step(m, b, cfg.loss)  # noqa: E731
    metrics, history = phases.run_age_phases(model, layout.run_name("finetune_korean", cfg.seed), ["korean"],
                                             budget, cfg, device, step, cfg.lr_scale, from_trained=True)
    # trained_on: the baseline it starts from learned the general ages
    artifacts.save_outputs("finetune_korean", cfg.seed, model, "age", encoder, metrics, history,
                           trained_on=["general", "korean"])


if __name__ == "__main__":
    runtime.entry_point(main, "finetune_korean")
