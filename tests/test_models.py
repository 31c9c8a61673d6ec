"""Every registered encoder and the heads: shapes right, finite, registry errors clear."""
import math

import pytest
import torch

from pipeline.config import ConfigError
from pipeline.models import AgeRegressor, VCOPHead, VCOPModel, build_encoder, list_encoders


@pytest.mark.parametrize("name", list_encoders())
def test_encoder_forward(name):
    encoder = build_encoder(name).eval()
    features = encoder(torch.randn(2, 3, 32, 32))
    assert features.shape == (2, encoder.feature_dim) and torch.isfinite(features).all()


@pytest.mark.parametrize("name", list_encoders())
def test_age_and_vcop_models_take_uint8_photos(name):
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    assert AgeRegressor(build_encoder(name))(images).shape == (4,)
    tuples = torch.randint(0, 256, (2, 4, 3, 32, 32), dtype=torch.uint8)
    assert VCOPModel(build_encoder(name), tuple_len=4, hidden=32)(tuples).shape == (2, 24)


def test_r21d_takes_clips_and_photos():
    encoder = build_encoder("r21d_mini").eval()
    assert encoder(torch.randn(2, 3, 4, 32, 32)).shape == (2, 256)  # (B, C, T, H, W)
    assert encoder(torch.randn(2, 3, 32, 32)).shape == (2, 256)  # a photo is a clip of T = 1


@pytest.mark.parametrize("tuple_len", [3, 4, 5])
def test_vcop_head_uses_every_pair(tuple_len):
    head = VCOPHead(8, tuple_len, hidden=16)
    assert len(head.pairs) == math.comb(tuple_len, 2)
    assert head(torch.randn(3, tuple_len, 8)).shape == (3, math.factorial(tuple_len))


def test_vcop_head_depends_on_order():
    torch.manual_seed(0)
    head = VCOPHead(8, 3, hidden=16, dropout=0.0).eval()
    features = torch.randn(1, 3, 8)
    assert not torch.allclose(head(features), head(features[:, [2, 0, 1]]))


def test_unknown_encoder_lists_available():
    with pytest.raises(ConfigError, match="unknown encoder 'resnet19'; available: .*resnet18"):
        build_encoder("resnet19")


def test_missing_local_weights_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights_path"):
        build_encoder("resnet18", weights_path=str(tmp_path / "none.pth"))


def test_linear_probe_trains_the_head_only_and_keeps_batchnorm_statistics():
    torch.manual_seed(0)
    model = AgeRegressor(build_encoder("tiny_cnn")).freeze_encoder()
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    model.train()  # what fit() does every epoch
    assert not model.encoder.training and model.head.training
    model(torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)).sum().backward()
    assert all(p.grad is None for p in model.encoder.parameters()) and model.head.weight.grad is not None
    assert all(torch.equal(before[k], v) for k, v in model.encoder.state_dict().items())  # running stats too
