"""mistd.engine: training, checkpoints and run configs.

- `run_config`: `RunConfig` (model / data / train sections, official CHAL defaults).
- `trainer`: `Trainer` (the loop and its state), `split_sequences`.
- `callbacks`: what runs around the loop: periodic evaluation, checkpoints, console /
  results.csv / TensorBoard logs, curves.png.
- `checkpoint`: atomic checkpoints, RNG states (loading weights into a model or a detector is
  `mistd.inference.weights`).
- `schedule`: YOLOX warm-up + cosine learning rate; `ema`: `ModelEMA`.
- `distributed`: torchrun process groups, `ShardedBatchSampler`, synchronised BatchNorm.
"""
