"""Stage split_korean (named after its Korean label budget, it splits both domains): identity-disjoint
train/val/test of the general and the Korean photos, and the labelled share of the Korean training persons."""
import pandas as pd

from pipeline import config, layout, runtime
from pipeline.data import manifest, splits

INDEX, SPLITS, SUMMARY = layout.CACHE_INDEX, layout.SPLITS, layout.SPLITS_SUMMARY


def main() -> None:
    cfg = config.load_section(config.SplitConfig, "split_korean")
    runtime.setup(seed=cfg.seed, config=cfg, stage="split_korean")
    table = manifest.read_manifest(INDEX, check_files=False).rename_axis("cache_row").reset_index()
    general, korean = (table[table["domain"] == d].copy() for d in ("general", "korean"))
    general["split"] = splits.split_general(general, cfg.seed, cfg.general_val_frac, cfg.general_test_frac)
    if cfg.korean_test_person:
        korean["split"] = splits.split_leave_one_out(korean, cfg.korean_test_person, cfg.seed, cfg.korean_val_frac)
    elif cfg.korean_published_split:
        # a source's own test persons (AIHub's Validation set) stay the test split; korean_test_frac then unused
        korean["split"] = splits.split_keeping_hints(korean, cfg.seed, cfg.korean_val_frac, cfg.korean_test_frac,
                                                     "korean")
    else:  # a split of the split seed's own, by person or family (a study's further splits)
        korean["split"] = splits.split_by_identity(korean, cfg.seed, cfg.korean_val_frac, cfg.korean_test_frac,
                                                   "korean")
    for name, part in (("general", general), ("korean", korean)):
        splits.check_disjoint(part, name)
    splits.check_evaluable(korean, leave_one_out=bool(cfg.korean_test_person))
    for name, part in (("general", general), ("korean", korean)):
        for split in ("train", "val", "test"):
            runtime.write_csv(layout.split_path(f"{name}_{split}"), part[part["split"] == split])
    labelled = splits.labelled_subset(korean[korean["split"] == "train"], cfg.label_frac, cfg.seed)
    runtime.write_csv(layout.split_path("korean_train_labelled"), labelled)
    summary = splits.summarise(pd.concat([general, korean]))
    summary["korean_train_labelled"] = {"n_persons": int(labelled["person_id"].nunique()), "n_photos": len(labelled)}
    runtime.write_json(SUMMARY, summary)


if __name__ == "__main__":
    runtime.entry_point(main, "split_korean")
