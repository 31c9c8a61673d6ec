"""Stage check_params: validate all of params.yaml before any other stage runs, and fingerprint real data roots.

DVC deletes a stage's outputs before it runs the stage's command, so a params mistake found inside (say)
multitrain would already have cost the user its model and metrics. This stage runs first on every `dvc repro`
(always_changed) and fails there instead; its output, data/inputs.json, changes only when a data root's files
do, so a passing check reruns nothing else.
"""
from pathlib import Path

import pipeline.models  # noqa: F401  (registers encoder names and the encoder_weights check: files must exist)
import pipeline.data.sources  # noqa: F401  (registers source names: `data.korean: CSV` must fail here, not later)
from pipeline import config, runtime
from pipeline.data import roots

INPUTS = Path("data/inputs.json")


def main() -> None:
    config.check_all()  # raises ConfigError naming the key and the fix
    data = config.load_section(config.DataConfig, "data")
    runtime.setup(seed=0, stage="check_params")
    runtime.write_json(INPUTS, roots.describe_inputs(data))


if __name__ == "__main__":
    main()
