"""Face detection + alignment on All-Age-Faces `original images`: detection rate, photos/s and eye error.

Two pipelines on the same sample, side by side in one run:
  ours  : pipeline.faces.prepare_many (decode + detect on a <= max_side copy + align), `--workers` processes
          with one torch thread each
  plain : facenet-pytorch's MTCNN as a user would call it: full resolution, default settings (min_face_size 20),
          torch's default threads, one process; then the same alignment

Eye error: AAF ships 49 landmarks per photo (`key points/NNNNNAxx.txt`, IntraFace/SDM markup, in the
*original image's* pixel coordinates: 0-9 brows, 10-18 nose, 19-24 eye on the image's left, 25-30 the other eye,
31-48 mouth with corners 31 and 37). The crop "implied by AAF's landmarks" is the same similarity fit to the same
template from AAF's eye centres (mean of each eye's 6 points) and mouth corners; the error is the distance
between where AAF's eye centres land in our crop and where they land in that reference crop, in % of the
reference crop's inter-ocular distance (mean of the two eyes). A face is "right" when that error is < 25 %.

    python benchmarks/faces_aaf.py ["/work/aaf/All-Age-Faces Dataset"] [--limit 800] [--workers 2]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.data.adapters import aaf
from pipeline.faces import FaceSettings, PhotoError, load_photo, prepare_many
from pipeline.faces.align import FIT_POINTS, apply, similarity, template_points

RIGHT_FACE_PCT = 25.0


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the pool's workers): load-independent cost."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def sample(root: Path, limit: int) -> list[Path]:
    """`limit` photos spread evenly over the age-sorted list (deterministic; every age band represented)."""
    table = aaf.read(root, "general").sort_values(["age", "path"]).reset_index(drop=True)
    picks = np.unique(np.linspace(0, len(table) - 1, min(limit, len(table))).round().astype(int))
    return [Path(p) for p in table["path"].iloc[picks]]


def aaf_points(root: Path, photo: Path) -> np.ndarray:
    """AAF's landmarks reduced to the template's order: eye centres, nose tip (unused), mouth corners (5, 2)."""
    return aaf.five_points(np.loadtxt(root / "key points" / f"{photo.stem}.txt"))  # (49, 2), original pixels


def eye_error_pct(landmarks: np.ndarray, reference: np.ndarray, settings: FaceSettings) -> float:
    """Mean distance of AAF's two eye centres between our crop and the AAF-landmark crop, % of its eye distance."""
    target = template_points(settings.template, settings.image_size, settings.margin)
    fit = list(FIT_POINTS)
    ours, theirs = similarity(landmarks[fit], target[fit]), similarity(reference[fit], target[fit])
    eyes = reference[:2]
    in_ours, in_theirs = apply(ours, eyes), apply(theirs, eyes)
    interocular = np.linalg.norm(in_theirs[1] - in_theirs[0])
    return float(np.linalg.norm(in_ours - in_theirs, axis=1).mean() / interocular * 100)


def run_ours(photos: list[Path], settings: FaceSettings, workers: int) -> tuple[list, float, float]:
    start, cpu = time.perf_counter(), cpu_seconds()
    results = list(prepare_many(photos, settings, workers=workers, desc="ours"))
    return results, time.perf_counter() - start, cpu_seconds() - cpu


def run_plain(photos: list[Path], settings: FaceSettings, threads: int | None) -> tuple[list, float, float]:
    from facenet_pytorch import MTCNN

    from pipeline.faces.align import align

    if threads:
        torch.set_num_threads(threads)
    start, cpu = time.perf_counter(), cpu_seconds()
    mtcnn = MTCNN(keep_all=True, device="cpu")  # every default: min_face_size 20, full resolution
    landmarks = []
    for photo in photos:
        pixels = load_photo(photo)
        boxes, _, points = mtcnn.detect(pixels, landmarks=True)
        if boxes is None:
            landmarks.append(None)
            continue
        largest = int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
        align(pixels, points[largest], settings.image_size, settings.margin, settings.template)
        landmarks.append(points[largest])
    return landmarks, time.perf_counter() - start, cpu_seconds() - cpu


def summarise(name: str, landmarks: list, seconds: float, cpu: float, root: Path, photos: list[Path],
              settings: FaceSettings) -> dict:
    scored = [(p, eye_error_pct(np.asarray(l, float), aaf_points(root, p), settings))
              for p, l in zip(photos, landmarks) if l is not None]
    errors = [e for _, e in scored]
    if wrong := [f"{p.name} ({e:.0f} %)" for p, e in scored if e >= RIGHT_FACE_PCT]:
        print(f"{name}: eye error >= {RIGHT_FACE_PCT:.0f} % on {', '.join(wrong[:8])}")
    found = sum(l is not None for l in landmarks)
    right = sum(e < RIGHT_FACE_PCT for e in errors)
    good = [e for e in errors if e < RIGHT_FACE_PCT]
    row = {"name": name, "n": len(photos), "found": found, "right": right, "seconds": seconds,
           "per_s": len(photos) / seconds, "cpu_ms": 1000 * cpu / len(photos), "median": float(np.median(good)),
           "mean": float(np.mean(good)),
           "p95": float(np.percentile(good, 95))}
    print(f"{name:6s} found {found}/{len(photos)} ({100 * found / len(photos):.2f} %), right face "
          f"{right} ({100 * right / len(photos):.2f} %), {row['per_s']:.1f} photos/s ({seconds:.1f} s, "
          f"{row['cpu_ms']:.0f} CPU-ms/photo); "
          f"eye error (right faces) median {row['median']:.1f} %, mean {row['mean']:.1f} %, p95 {row['p95']:.1f} % "
          f"of the inter-ocular distance")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", nargs="?", type=Path, default=Path("/work/aaf/All-Age-Faces Dataset"))
    parser.add_argument("--limit", type=int, default=800, help="photos in the sample, spread over the ages")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--max-side", type=int, default=400)
    parser.add_argument("--min-face-size", type=int, default=20)
    parser.add_argument("--skip-plain", action="store_true", help="measure our pipeline only")
    parser.add_argument("--plain-threads", type=int, default=None,
                        help="torch threads for plain MTCNN (default: torch's, i.e. one per core)")
    args = parser.parse_args()

    settings = FaceSettings(face="mtcnn", image_size=args.image_size, max_side=args.max_side,
                            min_face_size=args.min_face_size)
    photos = sample(args.root, args.limit)
    print(f"{len(photos)} photos from {args.root}; {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); settings {settings.to_dict()}")
    print("load before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    results, seconds, cpu = run_ours(photos, settings, args.workers)
    errors = [r for r in results if isinstance(r, PhotoError)]
    if errors:
        print(f"{len(errors)} unusable file(s), e.g. {errors[0]}")
    ours = summarise("ours", [None if isinstance(r, PhotoError) or not r.face_found else r.landmarks
                              for r in results], seconds, cpu, args.root, photos, settings)
    multi = sum(1 for r in results if not isinstance(r, PhotoError) and r.n_faces > 1)
    print(f"ours: {multi} photo(s) with more than one face (the largest was used)")
    if not args.skip_plain:
        landmarks, seconds, cpu = run_plain(photos, settings, args.plain_threads)
        plain = summarise("plain", landmarks, seconds, cpu, args.root, photos, settings)
        print(f"speed-up ours / plain: {ours['per_s'] / plain['per_s']:.2f}x; found-rate difference "
              f"{100 * (ours['found'] - plain['found']) / len(photos):+.2f} points")
    print("load after:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
