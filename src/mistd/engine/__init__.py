"""mistd.engine: training.

- `trainer`: `Trainer` (the loop and its state), `split_sequences`.
- `callbacks`: what runs around the loop: periodic evaluation, checkpoints, console /
  results.csv / TensorBoard logs, curves.png.
- `schedule`: YOLOX warm-up + cosine learning rate; `ema`: `ModelEMA`.
- `distributed`: torchrun process groups, `ShardedBatchSampler`, synchronised BatchNorm.

Below the engine and inference alike (neither imports the other): `mistd.run_config` (the
`RunConfig`), `mistd.checkpoint` (the checkpoint file format), `mistd.weights` (reading any
weights, the shipped ones), `mistd.device` (`resolve_device`).
"""
