"""Stage evaluate: every condition's final model of every training seed on the Korean and general test splits;
seed means, paired CIs over (seed, person); report."""
from pipeline import comparison, config, layout, report, runtime
from pipeline.data.cache import open_images
from pipeline.data.loaders import read_split
from pipeline.layout import CACHE

TESTS = {"korean": layout.split_path("korean_test"), "general": layout.split_path("general_test")}
DATA_SUMMARY, HISTORIES = layout.DATA_SUMMARY, layout.HISTORY
OUT, PLOTS, REPORT = layout.EVAL, layout.PLOTS, layout.REPORT


def main() -> None:
    cfg = config.load_section(config.EvalConfig, "evaluate")  # cfg.seed: the split seed (the bootstrap's draws)
    seeds = config.train_seeds()
    device = runtime.setup(seed=cfg.seed, config=cfg, stage="evaluate")
    images = open_images(CACHE)
    tests = {name: read_split(path) for name, path in TESTS.items()}
    preds = comparison.predict_conditions(images, tests, device, cfg.batch_size, seeds, cfg.mirror_average)
    results = comparison.condition_metrics(preds, tests, seeds)
    compared = comparison.compare_conditions(preds, tests["korean"], cfg, seeds)
    data_summary = runtime.read_json(DATA_SUMMARY)
    compared["bayes_floor_korean"] = data_summary.get("bayes_floor_mae_korean")
    compared["pretext"] = comparison.pretext_scores(images, device, cfg, seeds)
    compared["train_seeds"] = seeds
    tables = comparison.tables(preds, tests["korean"], results, seeds)
    comparison.write_outputs(OUT, results, compared, tables)
    figures = report.write_figures(tables, HISTORIES, PLOTS, seeds)
    print(report.write_report(REPORT, results, compared, data_summary, figures))


if __name__ == "__main__":
    runtime.entry_point(main, "evaluate")
