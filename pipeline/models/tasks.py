"""Task models around an encoder (age regressor, VCOP order predictor, the coupled multitrain pair), the
order-ranking loss and the age scaling the age head predicts in."""
from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.input_transform import InputTransform

AGE_CENTER, AGE_SCALE = 35.0, 20.0  # the head predicts (age - centre) / scale: unit-sized targets


def to_years(normalised: torch.Tensor) -> torch.Tensor:
    return normalised * AGE_SCALE + AGE_CENTER


def to_normalised(years: torch.Tensor) -> torch.Tensor:
    return (years - AGE_CENTER) / AGE_SCALE


def encoder_input(encoder: nn.Module, transform: InputTransform, images: torch.Tensor) -> torch.Tensor:
    """uint8 photos -> the encoder's input, normalised with the statistics its weights expect (buffers that
    registry.build_encoder sets and every saved model carries)."""
    return transform(images, getattr(encoder, "input_mean", None), getattr(encoder, "input_std", None))


class AgeRegressor(nn.Module):
    """uint8 photos (N, C, H, W) -> normalised age (N,)."""

    def __init__(self, encoder: nn.Module, augment: bool = True):
        super().__init__()
        self.input_transform, self.encoder = InputTransform(augment), encoder
        self.head = nn.Linear(encoder.feature_dim, 1)
        self.encoder_frozen = False

    def freeze_encoder(self) -> AgeRegressor:
        """A linear probe: the encoder is neither trained nor adapted (eval mode keeps BatchNorm statistics)."""
        self.encoder.requires_grad_(False)
        self.encoder_frozen = True
        return self.train(self.training)

    def train(self, mode: bool = True) -> AgeRegressor:
        super().train(mode)
        if self.encoder_frozen:  # fit() calls model.train() every epoch: keep the probed features fixed
            self.encoder.eval()
        return self

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(encoder_input(self.encoder, self.input_transform, images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images)).squeeze(1)


class VCOPHead(nn.Module):
    """Xu et al. 2019: each pair (i < j) of element features -> shared FC; all pairs concatenated -> FC -> T! logits."""

    def __init__(self, feature_dim: int, tuple_len: int, hidden: int = 512, dropout: float = 0.5):
        super().__init__()
        self.pairs = list(itertools.combinations(range(tuple_len), 2))
        self.pair_fc = nn.Sequential(nn.Linear(2 * feature_dim, hidden), nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden * len(self.pairs),
                                                                       math.factorial(tuple_len)))
        self.feature_dim = feature_dim

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T!)
        i, j = zip(*self.pairs)
        pairs = torch.cat([features[:, list(i)], features[:, list(j)]], dim=2)  # (B, P, 2D)
        return self.classifier(self.pair_fc(pairs).flatten(1))


def encode_tuples(encode, tuples: torch.Tensor) -> torch.Tensor:
    """All elements of all tuples in one forward: (B, T, C, H, W) -> (B, T, D)."""
    b, t = tuples.shape[:2]
    return encode(tuples.flatten(0, 1)).view(b, t, -1)


class VCOPModel(nn.Module):
    """Shared per-photo encoder + VCOP head: uint8 tuples (B, T, C, H, W) -> permutation logits."""

    def __init__(self, encoder: nn.Module, tuple_len: int, hidden: int = 512, dropout: float = 0.5):
        super().__init__()
        self.input_transform, self.encoder = InputTransform(augment=True), encoder
        self.head = VCOPHead(encoder.feature_dim, tuple_len, hidden, dropout)

    def features(self, tuples: torch.Tensor) -> torch.Tensor:
        return encode_tuples(lambda x: self.encoder(encoder_input(self.encoder, self.input_transform, x)), tuples)

    def forward(self, tuples: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(tuples))


def order_margin_loss(ages: torch.Tensor, rank: torch.Tensor, margin: float) -> torch.Tensor:
    """Pairwise margin ranking: a photo taken later must be predicted >= `margin` older.

    ages (B, T) predictions; rank (B, T) temporal position of each element (0 = earliest).
    """
    later = rank[:, :, None] > rank[:, None, :]  # [b, k, l]: element k was taken after element l
    gap = ages[:, :, None] - ages[:, None, :]
    return F.relu(margin - gap)[later].mean()


class MultiTrainModel(nn.Module):
    """A VCOP encoder and an age encoder of different architectures, trained at once and coupled.

    The coupling is the only path by which order information can reach the age encoder:
      shared_head  the age encoder's projected tuple features must predict the permutation through the VCOP head
      distill      its projected pairwise feature differences align with the VCOP encoder's (teacher detached here)
      rank         its age predictions on a tuple must respect the tuple's temporal order (margin ranking)
      none         no path: independent training under a summed loss (the control)
    """

    def __init__(self, age: AgeRegressor, vcop: VCOPModel, coupling: str, rank_margin_years: float = 1.0):
        super().__init__()
        self.age, self.vcop, self.coupling = age, vcop, coupling
        self.rank_margin = rank_margin_years / AGE_SCALE
        if coupling in ("shared_head", "distill"):
            self.proj = nn.Linear(age.encoder.feature_dim, vcop.head.feature_dim)

    def coupling_loss(self, tuples: torch.Tensor, labels: torch.Tensor, perms: torch.Tensor,
                      vcop_features: torch.Tensor) -> torch.Tensor:
        """Loss that depends on the age encoder and on order; zero tensor (no graph into it) for `none`."""
        if self.coupling == "none":
            return vcop_features.new_zeros(())
        age_features = encode_tuples(self.age.features, tuples)  # (B, T, Da)
        if self.coupling == "shared_head":
            return F.cross_entropy(self.vcop.head(self.proj(age_features)), labels)
        if self.coupling == "distill":
            student, teacher = self.proj(age_features), vcop_features.detach()
            i, j = zip(*self.vcop.head.pairs)
            s_diff = student[:, list(j)] - student[:, list(i)]
            t_diff = teacher[:, list(j)] - teacher[:, list(i)]
            return (1 - F.cosine_similarity(s_diff, t_diff, dim=2)).mean()
        if self.coupling == "rank":
            ages = self.age.head(age_features).squeeze(2)  # (B, T) in shuffled order
            return order_margin_loss(ages, perms[labels], self.rank_margin)
        raise ValueError(f"unknown coupling '{self.coupling}'; use shared_head, distill, rank or none")
