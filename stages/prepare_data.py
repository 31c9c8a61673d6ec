"""Stage prepare_data: the manifest of both roles (synthetic by default), each photo prepared once into the cache
(data.face / <role>_face: centre crop, or a face aligned from MTCNN's or the label's landmarks; unusable photos
listed with their reason in data/cache/dropped.csv). A killed build resumes (pipeline.data.cache_resume)."""
from pathlib import Path

import pandas as pd

from pipeline import config, layout, runtime
from pipeline.data import cache, cache_build, sources, summary

MANIFEST, CACHE, SUMMARY, SHEET = layout.MANIFEST, layout.CACHE, layout.DATA_SUMMARY, layout.CONTACT_SHEET


def main() -> None:
    cfg = config.load_section(config.DataConfig, "data")
    data_seed = cfg.synthetic.seed if cfg.uses_synthetic else 0
    runtime.setup(seed=data_seed, config=cfg, stage="prepare_data")
    table, info, left_out = sources.build_manifest(cfg)
    runtime.write_csv(MANIFEST, table)
    meta = cache_build.build_cache(table, Path("."), CACHE, cache_build.face_settings(cfg),
                                   workers=cfg.workers or None,
                                   crops=sources.rendered_crops(cfg, table).to_numpy(), dropped=left_out,
                                   resume_dir=layout.CACHE_RESUME)
    summary.contact_sheet(pd.read_csv(layout.CACHE_INDEX, dtype={"person_id": str}), cache.open_images(CACHE), SHEET)
    runtime.write_json(SUMMARY, summary.data_summary(table, info, meta))


if __name__ == "__main__":
    runtime.entry_point(main, "prepare_data")
