"""Stage build_sequences: VCOP tuples from Korean *training* persons (val tuples from val persons)."""
from pathlib import Path

from pipeline import config, runtime
from pipeline.data import loaders, sequences

TRAIN, VAL = Path("data/splits/korean_train.csv"), Path("data/splits/korean_val.csv")
OUT, SUMMARY = Path("data/sequences"), Path("metrics/sequences.json")


def main() -> None:
    cfg = config.load_section(config.SequenceConfig, "build_sequences")
    runtime.setup(seed=cfg.seed, config=cfg, stage="build_sequences")
    summary = {"tuple_len": cfg.tuple_len, "n_classes": len(sequences.permutations(cfg.tuple_len))}
    for split, source in (("train", TRAIN), ("val", VAL)):
        tuples, counts = sequences.build_tuples(loaders.read_split(source), cfg.tuple_len, cfg.min_gap_years,
                                                cfg.tuples_per_person, cfg.seed)
        if tuples.empty:
            raise ValueError(f"no {split} tuples from {source}: no person has {cfg.tuple_len} photos "
                             f"{cfg.min_gap_years} years apart; lower build_sequences.min_gap_years or tuple_len")
        runtime.write_csv(OUT / f"{split}.csv", tuples)
        summary.update({f"{split}_{k}": v for k, v in counts.items()})
    runtime.write_json(SUMMARY, summary)


if __name__ == "__main__":
    main()
