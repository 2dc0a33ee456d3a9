"""Training, in three rooms: `runtime/` (how any run runs on Ray Train), `pretraining/` (PPKT, I2P-MAE) and
`finetuning/` (the fine-tuning loop and the downstream tasks). The modules at this level are what both
pretraining and fine-tuning use: the step loop's `Training` base (loop.py), the shared param groups,
augmentation, schedules, weight decay, and the object samples and I2P-MAE object data that classification and
object fine-tuning read too. Nothing is re-exported here."""
