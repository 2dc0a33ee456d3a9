"""The pretraining methods of the `pretrain` stage: PPKT (ppkt, its frame stream, InfoNCE) and I2P-MAE (i2p_mae,
its masking, Chamfer loss), each a `StepTraining` trained by training/loop.py's `run_steps`. Nothing is
re-exported."""
