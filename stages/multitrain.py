"""Stage multitrain (condition 4): VCOP and age encoders of different architectures trained at once, coupled.

One run per training seed K (dvc.yaml's foreach passes --train-seed K)."""
import pandas as pd

from pipeline import artifacts, config, layout, phases, runtime, steps
from pipeline.data.sequences import tuple_rows
from pipeline.models import AgeRegressor, MultiTrainModel, VCOPModel, build_encoder

TUPLES = layout.tuples_path("train")
# outs: models/multitrain/seed<K>/model.pt, metrics/train/multitrain/seed<K>.json,
#       metrics/history/multitrain/seed<K>.csv


def main() -> None:
    cfg = config.load_training(config.MultiTrainConfig, "multitrain")  # cfg.seed: the training seed
    budget = config.load_section(config.BudgetConfig, "budget")
    device = runtime.setup(seed=cfg.seed, config=cfg, stage="multitrain")
    tuple_len = tuple_rows(pd.read_csv(TUPLES, nrows=1)).shape[1]
    vcop = VCOPModel(build_encoder(cfg.vcop_encoder, cfg.vcop_encoder_weights), tuple_len, cfg.head_hidden, cfg.dropout)
    age = AgeRegressor(build_encoder(cfg.age_encoder, cfg.age_encoder_weights))
    model = MultiTrainModel(age, vcop, cfg.coupling, cfg.rank_margin_years)
    step = steps.MultiStep(cfg.vcop_weight, cfg.coupling_weight, cfg.loss)
    metrics, history = phases.run_age_phases(model, layout.run_name("multitrain", cfg.seed), ["general", "korean"],
                                             budget, cfg, device, step, cfg.lr_scale,
                                             tuple_batch_of=cfg.tuple_batch_size, age_model=model.age)
    artifacts.save_outputs("multitrain", cfg.seed, model.age, "age", cfg.age_encoder, metrics, history,
                           trained_on=["general", "korean"], coupling=cfg.coupling)


if __name__ == "__main__":
    runtime.entry_point(main, "multitrain")
