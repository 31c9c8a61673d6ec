"""Stage check_params: validate all of params.yaml, and what params and the manifests alone decide, before any other
stage runs; fingerprint real data roots.

DVC deletes a stage's outputs before it runs the stage's command, so a params mistake found inside (say)
multitrain would already have cost the user its model and metrics. This stage runs first on every `dvc repro`
(always_changed) and fails there instead: params types and ranges, manifest rows (duplicates, missing files, bad
ages) and a leave-one-out test person missing from the Korean data. Its output, data/inputs.json, changes only
when a data root's files do, so a passing check reruns nothing else.
"""
import pipeline.models  # noqa: F401  (registers encoder names and the encoder_weights check: files must exist)
from pipeline import config, layout, runtime
from pipeline.data import roots, sources, splits  # sources registers source names: `data.korean: CSV` fails here

INPUTS = layout.INPUTS


def main() -> None:
    config.check_all()  # raises ConfigError naming the key and the fix
    data = config.load_section(config.DataConfig, "data")
    split = config.load_section(config.SplitConfig, "split_korean")
    runtime.setup(seed=0, stage="check_params")
    korean_persons = sources.check_manifest(data)  # raises ManifestError naming the file, the rows and the fix
    if split.korean_test_person:
        splits.require_person(korean_persons, split.korean_test_person)
    runtime.write_json(INPUTS, roots.describe_inputs(data))


if __name__ == "__main__":
    runtime.entry_point(main, "check_params")
