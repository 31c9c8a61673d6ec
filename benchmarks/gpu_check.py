"""The CUDA path run for real: every stage of a profile in dvc.yaml order on a GPU, with per-stage times,
training throughput (the loop's own `samples/s` log lines) and peak GPU memory (nvidia-smi, polled).

    python benchmarks/gpu_check.py --profile smoke --out results/          # tests/fixtures/params.tiny.yaml
    python benchmarks/gpu_check.py --profile full --epochs 3 --out results/ # profiles/full.yaml, epochs capped
    python benchmarks/gpu_check.py --profile full --epochs 2 --stages prepare_data,split_korean,train_baseline \
        --set runtime.amp=false --out results/                               # AMP off, for the on/off ratio

It runs the stage scripts directly (`python stages/<name>.py`, a training stage once per train_seeds entry with
`--train-seed K` as dvc.yaml's foreach does, in the order of dvc.yaml, which is a topological order) in a fresh
copy of the sources, because DVC is not installed on the lent GPU machines; with DVC present,
`dvc exp run $(python -m pipeline.profiles full)` runs the same commands. `--epochs N` caps every training
phase's epochs (for a device-time budget); per-epoch times are reported so the full budget can be extrapolated.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pipeline", "stages", "profiles", "dvc.yaml")
THROUGHPUT = re.compile(r"(\S+) \d+/\d+: ([\d.]+) s, (\d+) samples/s")  # fit()'s per-epoch log line


class GpuMemoryPoll(threading.Thread):
    """Peak `memory.used` of GPU 0 while a stage runs (the stage is another process, so torch can't see it)."""

    def __init__(self, every_s: float = 0.2):
        super().__init__(daemon=True)
        self.every_s, self.peak_mib, self._done = every_s, 0, threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                                      "-i", "0"], capture_output=True, text=True, timeout=5).stdout
                self.peak_mib = max(self.peak_mib, int(out.strip().splitlines()[0]))
            except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
                pass
            self._done.wait(self.every_s)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak_mib


def set_key(tree: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[last] = value


def profile_params(profile: str, epochs: int, extra: list[str]) -> dict:
    if profile == "smoke":
        params = yaml.safe_load((ROOT / "tests/fixtures/params.tiny.yaml").read_text())
    else:
        sys.path.insert(0, str(ROOT))
        from pipeline.config import read_params
        from pipeline.profiles import overrides
        os.chdir(ROOT)
        params = read_params(ROOT / "params.yaml")
        for key, value in overrides(profile).items():
            set_key(params, key, value)
    if epochs:
        for key in ("budget.general", "budget.korean", "pretrain_vcop"):
            section = params
            for part in key.split("."):
                section = section[part]
            section["epochs"] = min(section["epochs"], epochs)
    for item in extra:
        key, value = item.split("=", 1)
        set_key(params, key, yaml.safe_load(value))
    return params


def stage_runs(stages: dict, params: dict, wanted: list[str]) -> list[tuple[str, list[str]]]:
    """(name, script and arguments) of each run in dvc.yaml order: a foreach stage once per training seed."""
    runs = []
    for name, stage in stages.items():
        if wanted and name not in wanted:
            continue
        if "foreach" in stage:
            runs += [(f"{name}@{k}", [f"stages/{name}.py", "--train-seed", str(k)]) for k in params["train_seeds"]]
        else:
            runs.append((name, [f"stages/{name}.py"]))
    return runs


def run_stages(work: Path, runs: list[tuple[str, list[str]]], log_dir: Path, partial: Path) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(work), "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1"}
    rows = []
    for stage, command in runs:
        poll = GpuMemoryPoll()
        poll.start()
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, *command], cwd=work, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        peak = poll.stop()
        log_text = proc.stdout + proc.stderr
        (log_dir / f"{stage}.log").write_text(log_text)
        epochs = [(m.group(1), float(m.group(2)), int(m.group(3))) for m in THROUGHPUT.finditer(log_text)]
        rows.append({"stage": stage, "seconds": round(seconds, 1), "rc": proc.returncode, "peak_gpu_mib": peak,
                     "train_epochs": len(epochs),
                     "median_epoch_s": sorted(e[1] for e in epochs)[len(epochs) // 2] if epochs else None,
                     "median_samples_per_s": sorted(e[2] for e in epochs)[len(epochs) // 2] if epochs else None,
                     "device_line": next((ln for ln in log_text.splitlines() if " device " in ln), "")})
        print(json.dumps(rows[-1]), flush=True)
        partial.write_text(json.dumps(rows, indent=2) + "\n")  # survives a timeout of the whole command
        if proc.returncode != 0:
            print(log_text[-3000:], flush=True)
            break
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="smoke", help="smoke (tests/fixtures/params.tiny.yaml) or a profile name")
    parser.add_argument("--epochs", type=int, default=0, help="cap every phase's epochs (0: the profile's)")
    parser.add_argument("--stages", default="", help="comma-separated subset, in dvc.yaml order (default: all)")
    parser.add_argument("--set", action="append", default=[], help="extra key.path=value override")
    parser.add_argument("--work", type=Path, default=Path("/tmp/age_vcop_gpu"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    params = profile_params(args.profile, args.epochs, args.set)
    wanted = args.stages.split(",") if args.stages else []
    runs = stage_runs(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"], params, wanted)
    work = args.work / args.profile
    if not wanted or "prepare_data" in wanted:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    for name in SOURCES:
        src, dst = ROOT / name, work / name
        if dst.exists():
            shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    tag = args.profile + ("-" + "-".join(s.replace("=", "_").replace(".", "_") for s in args.set) if args.set else "")
    log_dir = args.work / "logs" / tag  # stage logs beside the work copies; summaries (few files) under --out
    log_dir.mkdir(parents=True, exist_ok=True)
    rows = run_stages(work, runs, log_dir, args.out / f"{tag}.partial.json")
    summary = {"profile": args.profile, "epochs_cap": args.epochs, "overrides": args.set, "stages": rows,
               "total_s": round(sum(r["seconds"] for r in rows), 1)}
    korean = work / "metrics/eval"
    if korean.exists():
        summary["korean_test_mae"] = {p.stem: json.loads(p.read_text()).get("01_korean_mae")
                                      for p in sorted(korean.glob("*.json")) if p.stem != "comparison"}
    (args.out / f"{tag}.json").write_text(json.dumps(summary, indent=2) + "\n")
    (args.out / f"{tag}.partial.json").unlink()
    print(json.dumps({k: v for k, v in summary.items() if k != "stages"}), flush=True)
    return 0 if all(r["rc"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
