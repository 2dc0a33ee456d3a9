"""How a training run runs on Ray Train, whatever the method: launching and checkpoints (distributed), a grid's
runs in concurrency slots (trials, run_grid), samples streamed through Ray Data in a fixed order
(sample_stream, sample_order), reproducibility (determinism), the step's device (device), console progress and
TensorBoard (progress, tracking). Nothing here knows a method; nothing is re-exported."""
