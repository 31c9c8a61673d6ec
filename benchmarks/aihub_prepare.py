"""prepare_data's cache build on an AIHub-layout tree at the real resolution: landmarks vs MTCNN, and resume.

Writes a tree with tests/aihub_fixture.py (~1,000 px PNGs, every quirk), then builds the Korean cache from it
three ways, each in a fresh process (peak memory: the largest process's RSS, and the sum of the build's
processes' PSS, which counts pages shared after fork once, sampled every 0.5 s; the photos/s use the
build's own time, without the ~2-120 s torch import that a loaded shared disk adds):
  landmarks : data.korean_face landmarks (decode + align from the label's points, no detector)
  mtcnn     : data.korean_face mtcnn (decode + MTCNN on a <= 400 px copy + align)
  resume    : landmarks killed (SIGKILL) once 90 % of the photos are in the journal, then rerun: photos decoded by
              the rerun, its wall time, and whether its cache is byte-identical to the uninterrupted build's
CPU-seconds per photo (the processes' user + system time) extrapolate to other core counts.

    python benchmarks/aihub_prepare.py [--persons 10] [--photos 8] [--side 1000] [--workers 2] [--out /tmp/aihub_bench]
                                       [--modes landmarks,mtcnn]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

N_REAL = 50_250  # photos in AIHub's face-aging set


def child(tree: Path, out: Path, mode: str, workers: int) -> None:
    """One cache build, as prepare_data runs it for the Korean role (imported here: the parent stays light)."""
    import logging

    from pipeline.data import cache_build
    from pipeline.data.adapters import ADAPTERS
    from pipeline.data.adapters.common import DROPPED
    from pipeline.data.manifest import validate
    from pipeline.faces import FaceSettings

    logging.basicConfig(level="INFO", format="%(message)s")
    table = ADAPTERS["aihub_aging"](tree, "korean")
    left_out = table.attrs.pop(DROPPED)
    table = validate(table, "tree")
    settings = FaceSettings(face=mode, image_size=112)
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    meta = cache_build.build_cache(table, None, out / "cache", settings, workers=workers, dropped=left_out,
                                   resume_dir=out / "resume")
    own, workers_ = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"rows": len(table), "kept": meta["n_images"], "dropped": meta["dropped_by_reason"],
                      "build_s": time.monotonic() - start,  # without the imports (torch: seconds to minutes)
                      # the build's CPU time: this process's since the build began, plus its workers'
                      "cpu_s": own.ru_utime + own.ru_stime - before.ru_utime - before.ru_stime + workers_.ru_utime
                      + workers_.ru_stime,
                      "max_rss_mb": max(own.ru_maxrss, workers_.ru_maxrss) / 1024}))


def run(tree: Path, out: Path, mode: str, workers: int, kill_at: float | None = None) -> dict:
    """The build in a subprocess: wall time, CPU time, peak total RSS; killed once `kill_at` of the rows are done."""
    cmd = [sys.executable, __file__, "--child", mode, str(tree), str(out), str(workers)]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    root, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, sum(p.memory_full_info().pss for p in [root, *root.children(recursive=True)]))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
        journal = out / "resume" / "rows.jsonl"
        if kill_at and journal.exists():
            n_done = sum(1 for _ in open(journal))
            n_rows = int((out / "resume" / "key.txt").read_text().split("(")[1].split(",")[0])  # "<key> (n, ...)"
            if n_done >= kill_at * n_rows:
                os.killpg(proc.pid, signal.SIGKILL)  # the build and its workers, as a kill of `dvc repro` does
                proc.wait()
                return {"killed_at_rows": n_done, "rows": n_rows, "wall_s": time.monotonic() - start}
        time.sleep(0.5)  # reading smaps often slows the process it reads
    wall = time.monotonic() - start
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} build failed:\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    decoded = [line for line in stderr.splitlines() if " photos on " in line]
    result.update(wall_s=wall, peak_pss_mb=peak / 2**20,
                  decoded=sum(int(line.split(": ")[1].split()[0]) for line in decoded))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=10, help="Training + Validation persons (3 of them Validation)")
    parser.add_argument("--photos", type=int, default=8, help="photos per person")
    parser.add_argument("--side", type=int, default=1000, help="photo width (height 1.2x)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/aihub_bench"))
    parser.add_argument("--modes", default="landmarks,mtcnn", help="builds to measure before the resume ('' for "
                        "none: the resume is compared with an earlier landmarks build in --out)")
    parser.add_argument("--child", nargs=4, metavar=("MODE", "TREE", "OUT", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, tree, out, workers = args.child
        child(Path(tree), Path(out), mode, int(workers))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test fixture is not part of the package
    from tests.aihub_fixture import write_tree

    tree = args.out / "tree"
    if not tree.exists():
        start = time.monotonic()
        write_tree(tree, n_train=args.persons - 3, n_val=3, photos_per_person=args.photos, side=args.side)
        print(f"tree: {args.persons} persons x {args.photos} photos at {args.side} px in "
              f"{time.monotonic() - start:.0f} s")
    pngs = sorted(tree.rglob("*.png"))
    print(f"{len(pngs)} PNGs, {sum(p.stat().st_size for p in pngs) / len(pngs) / 2**20:.2f} MB each on average; "
          f"{args.workers} workers, {psutil.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    results = {}
    for mode in filter(None, args.modes.split(",")):
        out = args.out / mode
        subprocess.run(["rm", "-rf", str(out)], check=True)
        r = results[mode] = run(tree, out, mode, args.workers)
        per_photo = r["cpu_s"] / r["decoded"]
        rate = r["decoded"] / r["build_s"]
        print(f"{mode:9s}: {r['decoded']} photos in {r['build_s']:.1f} s = {rate:.2f} photos/s,"
              f" {per_photo:.3f} CPU-s/photo, peak memory: largest process {r['max_rss_mb']:.0f} MB RSS, all"
              f" {r['peak_pss_mb']:.0f} MB PSS; kept {r['kept']};"
              f" {N_REAL:,} photos: {N_REAL / rate / 3600:.1f} h at this rate,"
              f" {N_REAL * per_photo / 2 / 3600:.1f} h on 2 free cores, {N_REAL * per_photo / 16 / 3600:.2f} h on 16")
    out = args.out / "resume"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    killed = run(tree, out, "landmarks", args.workers, kill_at=0.9)
    rerun = run(tree, out, "landmarks", args.workers)
    same = all((out / "cache" / n).read_bytes() == (args.out / "landmarks" / "cache" / n).read_bytes()
               for n in ("images.npy", "index.csv", "dropped.csv", "meta.json"))
    print(f"resume   : killed after {killed['killed_at_rows']}/{killed['rows']} rows ({killed['wall_s']:.1f} s); "
          f"the rerun decoded {rerun['decoded']} photos, its build took {rerun['build_s']:.1f} s "
          f"({rerun['wall_s']:.1f} s with the imports); cache identical to the "
          f"uninterrupted build: {same}")


if __name__ == "__main__":
    main()
