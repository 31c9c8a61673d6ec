"""Stage build_sequences: VCOP tuples from Korean *training* persons (val tuples from val persons)."""
from pipeline import config, layout, runtime
from pipeline.data import loaders, sequences

TRAIN, VAL = layout.split_path("korean_train"), layout.split_path("korean_val")
OUT, SUMMARY = layout.SEQUENCES, layout.SEQUENCES_SUMMARY
# what a per-epoch draw needs (date orders, when given; age intervals order band labels)
PHOTO_COLUMNS = ["person_id", "cache_row", "age", "date", "age_low", "age_high"]


def main() -> None:
    cfg = config.load_section(config.SequenceConfig, "build_sequences")
    runtime.setup(seed=cfg.seed, config=cfg, stage="build_sequences")
    summary = {"tuple_len": cfg.tuple_len, "n_classes": len(sequences.permutations(cfg.tuple_len))}
    for split, source in (("train", TRAIN), ("val", VAL)):
        tuples, counts = sequences.build_tuples(loaders.read_split(source), cfg.tuple_len, cfg.min_gap_years,
                                                cfg.tuples_per_person, cfg.seed)
        if tuples.empty:
            raise sequences.no_tuples(f"for {split} from {source}", cfg.tuple_len, cfg.min_gap_years)
        runtime.write_csv(layout.tuples_path(split), tuples)
        summary.update({f"{split}_{k}": v for k, v in counts.items()})
        if split == "train" and cfg.resample_each_epoch:  # the loader draws each epoch's tuples from these photos
            photos = loaders.read_split(source)
            runtime.write_csv(OUT / "train_photos.csv", photos[[c for c in PHOTO_COLUMNS if c in photos]])
    runtime.write_json(OUT / "sampling.json", {"resample_each_epoch": cfg.resample_each_epoch, "seed": cfg.seed,
                                                "tuple_len": cfg.tuple_len, "min_gap_years": cfg.min_gap_years,
                                                "tuples_per_person": cfg.tuples_per_person})
    runtime.write_json(SUMMARY, summary)


if __name__ == "__main__":
    runtime.entry_point(main, "build_sequences")
