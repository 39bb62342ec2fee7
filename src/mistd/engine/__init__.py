"""mistd.engine: training and trained-weights loading.

- `run_config`: `RunConfig` (model / data / train sections, official CHAL defaults).
- `trainer`: `Trainer` (the loop, callbacks, evaluation, logs), `split_sequences`.
- `checkpoint`: atomic checkpoints, RNG states, `load_detector` -> `ClipDetector`.
- `schedule`: YOLOX warm-up + cosine learning rate; `ema`: `ModelEMA`.
- `distributed`: torchrun process groups, `ShardedBatchSampler`, synchronised BatchNorm.
"""
