"""mistd.engine: training, checkpoints and run configs.

- `run_config`: `RunConfig` (model / data / train sections, official CHAL defaults).
- `trainer`: `Trainer` (the loop, callbacks, evaluation, logs), `split_sequences`.
- `checkpoint`: atomic checkpoints, RNG states (loading weights into a model or a detector is
  `mistd.inference.weights`).
- `schedule`: YOLOX warm-up + cosine learning rate; `ema`: `ModelEMA`.
- `distributed`: torchrun process groups, `ShardedBatchSampler`, synchronised BatchNorm.
"""
