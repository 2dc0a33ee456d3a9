"""Fine-tuning and its tasks: the loop every grid stage's runs train in (finetune_loop), with a run class per
task: segmentation (`finetune`), detection (`detect`), classification (`classify`), object fine-tuning
(`finetune_objects`); few-shot episodes (`fewshot`); and each task's data, label budgets and losses. Nothing is
re-exported."""
