"""Is age in the synthetic pixels learnable, and not trivially? Ridge regression on cheap image features.

Run after `dvc repro prepare_data split_korean`:  python benchmarks/synthetic_learnability.py
Prints MAE of predict-the-mean, ridge on features, and the Bayes floor; and how well a person's photos sorted
by the ridge prediction follow their true order (Kendall tau within persons).
"""
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import kendalltau
from sklearn.linear_model import RidgeCV

from pipeline import runtime
from pipeline.data.cache import open_images


def features(images: np.ndarray) -> np.ndarray:
    """Downsampled grey pixels + horizontal/vertical gradient energy per cell: no learning of filters."""
    grey = images.astype(np.float32).mean(axis=3)  # (N, H, W)
    n, h, w = grey.shape
    cells = 8
    small = grey[:, : h // cells * cells, : w // cells * cells].reshape(n, cells, h // cells, cells, w // cells)
    gx, gy = np.abs(np.diff(grey, axis=2))[:, :-1, :], np.abs(np.diff(grey, axis=1))[:, :, :-1]
    g = (gx + gy)[:, : (h - 1) // cells * cells, : (w - 1) // cells * cells]
    gcell = g.reshape(n, cells, (h - 1) // cells, cells, (w - 1) // cells).mean(axis=(2, 4))
    colour = images.reshape(n, -1, 3).mean(axis=1)
    return np.concatenate([small.mean(axis=(2, 4)).reshape(n, -1), gcell.reshape(n, -1), colour], axis=1)


def main() -> None:
    images = open_images(Path("data/cache"))
    splits = {name: pd.read_csv(f"data/splits/{name}.csv", dtype={"person_id": str})
              for name in ("general_train", "general_test", "korean_train", "korean_test")}
    floor = runtime.read_json("metrics/data.json")
    for domain in ("general", "korean"):
        train, test = splits[f"{domain}_train"], splits[f"{domain}_test"]
        model = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(features(images[train["cache_row"]]), train["age"])
        pred = model.predict(features(images[test["cache_row"]]))
        mean_mae = np.abs(test["age"] - train["age"].mean()).mean()
        ridge_mae = np.abs(test["age"] - pred).mean()
        print(f"{domain:8s} test n={len(test):4d}  predict-the-mean MAE {mean_mae:5.2f}  ridge-on-features MAE "
              f"{ridge_mae:5.2f}  Bayes floor {floor[f'bayes_floor_mae_{domain}']:.2f}")
        if domain == "korean":
            taus = [kendalltau(part["age"], pred[part.index - test.index[0]]).statistic
                    for _, part in test.reset_index(drop=True).groupby("person_id") if len(part) >= 3]
            print(f"korean   within-person order from ridge predictions: mean Kendall tau {np.nanmean(taus):.2f} "
                  f"over {len(taus)} persons (1 = perfectly ordered, 0 = random)")


if __name__ == "__main__":
    main()
