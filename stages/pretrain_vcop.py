"""Stage pretrain_vcop: a shared per-photo encoder + VCOP head learn the temporal order of a person's photos.

One run per training seed K (dvc.yaml's foreach passes --train-seed K)."""
from pipeline import artifacts, checkpoint, config, runtime, steps, train
from pipeline.data.cache import open_images
from pipeline.data.loaders import Loaders, tuple_loader
from pipeline.data.sequences import chance_accuracy
from pipeline.layout import CACHE, CHECKPOINTS, run_name, sequence_files
from pipeline.models import VCOPModel, build_encoder

# deps: data/cache, data/sequences
# outs: models/pretrain_vcop/seed<K>/model.pt, metrics/train/pretrain_vcop/seed<K>.json,
#       metrics/history/pretrain_vcop/seed<K>.csv


def main() -> None:
    cfg = config.load_training(config.VCOPConfig, "pretrain_vcop")  # cfg.seed: the training seed
    device = runtime.setup(seed=cfg.seed, config=cfg, stage="pretrain_vcop")
    images = open_images(CACHE)
    # the val tuples' shuffles follow the split seed, as evaluate draws them: every run selects on the same task
    val_seed = config.split_seed()
    loaders = Loaders(
        train=tuple_loader(images, "train", cfg.batch_size, cfg.seed, device, True, cfg.num_workers,
                           cfg.photo_control),
        val=tuple_loader(images, "val", cfg.batch_size, val_seed, device, False, cfg.num_workers,
                         cfg.photo_control))
    tuple_len = loaders.train.dataset.tuple_len
    model = VCOPModel(build_encoder(cfg.encoder, cfg.encoder_weights), tuple_len, cfg.head_hidden, cfg.dropout)
    inputs = checkpoint.input_digest(*sequence_files())
    run = run_name("pretrain_vcop", cfg.seed)
    result = train.fit(model, loaders, steps.vcop_step, cfg, CHECKPOINTS / run, device,
                       select="acc", maximize=True, tag=run, fingerprint_parts=(inputs, val_seed))
    artifacts.save_outputs("pretrain_vcop", cfg.seed, model, "vcop", cfg.encoder,
                           {**result.best, "chance_acc": chance_accuracy(tuple_len)}, result.history,
                           tuple_len=tuple_len, head_hidden=cfg.head_hidden, photo_control=cfg.photo_control)


if __name__ == "__main__":
    runtime.entry_point(main, "pretrain_vcop")
