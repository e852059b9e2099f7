"""Train stage: LoRA / QLoRA fine-tuning with TRL's SFTTrainer and PEFT, as resumable background jobs.

`settings` (what a run is), `data` (dataset version → masked token rows), `recipe` (the SFTTrainer
recipe), `preference` and `preference_data` (the DPO / KTO recipe and its data, for `method: dpo | kto`), `callbacks` (events, stop, power, checkpoint markers), `preflight` (counts, memory, probe, ETA,
energy), `runs` (run folders, resume checks, compare), `job` (the job-runner targets) and `__main__`
(`python -m core.train CONFIG.yaml [--resume]`). Importing this package imports no torch.
"""
