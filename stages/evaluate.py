"""Stage evaluate: every condition's final model on the Korean and general test splits; paired CIs; report."""
import math
from pathlib import Path

import pandas as pd

from pipeline import conditions, config, evaluate, report, runtime
from pipeline.data.cache import open_images
from pipeline.data.loaders import read_split

MODELS = conditions.CONDITION_STAGES
TESTS = {"korean": Path("data/splits/korean_test.csv"), "general": Path("data/splits/general_test.csv")}
DATA_SUMMARY, OUT, PLOTS = Path("metrics/data.json"), Path("metrics/eval"), Path("metrics/plots")


def main() -> None:
    cfg = config.load_section(config.EvalConfig, "evaluate")
    device = runtime.setup(seed=cfg.seed, config=cfg, stage="evaluate")
    images = open_images(conditions.CACHE)
    tests = {name: read_split(path) for name, path in TESTS.items()}
    results, preds = {}, {}
    for condition, stage in MODELS.items():
        model, _ = conditions.load_age_model(conditions.model_path(stage), needed_by="evaluate")
        for test, table in tests.items():
            preds[condition, test] = evaluate.predict_years(model, images, table["cache_row"].to_numpy(), device,
                                                            cfg.batch_size)
        results[condition] = {t: evaluate.age_metrics(preds[condition, t], tests[t]["age"].to_numpy()) for t in tests}
        runtime.write_json(OUT / f"{condition}.json", results[condition])
    korean = tests["korean"]
    true, persons = korean["age"].to_numpy(), korean["person_id"].to_numpy()
    abs_err = {c: abs(preds[c, "korean"] - true) for c in MODELS}
    comparison = {f"vs_{ref}": {c: evaluate.compare(abs_err[c], abs_err[ref], persons, cfg.n_bootstrap, cfg.seed,
                                                    cfg.ci) for c in MODELS if c != ref}
                  for ref in ("baseline", "finetune_korean")}
    data_summary = runtime.read_json(DATA_SUMMARY)
    comparison["bayes_floor_korean"] = data_summary.get("bayes_floor_mae_korean")
    vcop_model = conditions.load_vcop_model(conditions.model_path("pretrain_vcop"), needed_by="evaluate")
    val_tuples = conditions.tuple_loader(images, "val", cfg.batch_size, cfg.seed, device, train_mode=False)
    comparison["pretext"] = {"val_acc": evaluate.vcop_accuracy(vcop_model, val_tuples.epoch(0), device),
                             "chance": 1 / math.factorial(val_tuples.dataset.tuple_len)}
    runtime.write_json(OUT / "comparison.json", comparison)

    curves = pd.DataFrame({"n": range(16), **{c: evaluate.cs_curve(preds[c, "korean"], true) for c in MODELS}})
    scatter = pd.DataFrame({"age": true, **{c: preds[c, "korean"].round(2) for c in MODELS},
                            "person_id": persons})  # person ids let the study pool paired errors over runs
    bands = report.band_frame(results)
    for frame, name in ((curves, "cs_curve"), (scatter, "predictions"), (bands, "mae_by_band")):
        with runtime.atomic_path(OUT / f"{name}.csv") as tmp:
            frame.to_csv(tmp, index=False)
    histories = {s: pd.read_csv(p) for s in (*MODELS.values(), "pretrain_vcop")
                 if (p := Path(f"metrics/history/{s}.csv")).exists()}
    figures = [PLOTS / f for f in ("cs_curve.png", "scatter.png", "mae_by_band.png", "training_curves.png")]
    report.plot_cs(curves, figures[0])
    report.plot_scatter(scatter, figures[1])
    report.plot_bands(bands, figures[2])
    report.plot_training(histories, figures[3])
    print(report.write_report(Path("metrics/report.md"), results, comparison, data_summary, figures))


if __name__ == "__main__":
    main()
