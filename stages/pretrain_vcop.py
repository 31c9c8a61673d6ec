"""Stage pretrain_vcop: a shared per-photo encoder + VCOP head learn the temporal order of a person's photos."""
from pipeline import artifacts, checkpoint, config, runtime, train
from pipeline.data.cache import open_images
from pipeline.data.loaders import Loaders, tuple_loader
from pipeline.data.sequences import chance_accuracy
from pipeline.layout import CACHE, sequence_files
from pipeline.models import VCOPModel, build_encoder

# deps: data/cache, data/sequences
# outs: models/pretrain_vcop/model.pt, metrics/train/pretrain_vcop.json, metrics/history/pretrain_vcop.csv


def main() -> None:
    cfg = config.load_section(config.VCOPConfig, "pretrain_vcop")
    device = runtime.setup(seed=cfg.seed, config=cfg, stage="pretrain_vcop")
    images = open_images(CACHE)
    loaders = Loaders(
        train=tuple_loader(images, "train", cfg.batch_size, cfg.seed, device, True, cfg.num_workers),
        val=tuple_loader(images, "val", cfg.batch_size, cfg.seed, device, False, cfg.num_workers))
    tuple_len = loaders.train.dataset.tuple_len
    model = VCOPModel(build_encoder(cfg.encoder, cfg.encoder_weights), tuple_len, cfg.head_hidden, cfg.dropout)
    inputs = checkpoint.input_digest(*sequence_files())
    result = train.fit(model, loaders, train.vcop_step, cfg, checkpoint.CHECKPOINTS / "pretrain_vcop", device,
                       select="acc", maximize=True, tag="pretrain_vcop", fingerprint_parts=(inputs,))
    artifacts.save_outputs("pretrain_vcop", model, "vcop", cfg.encoder,
                           {**result.best, "chance_acc": chance_accuracy(tuple_len)}, result.history,
                           tuple_len=tuple_len, head_hidden=cfg.head_hidden)


if __name__ == "__main__":
    main()
