"""Students from a trained teacher (`nlp-transfer distill`): fewer layers, or static token vectors.

It may import every wing but `cli`, `experiments` and `labels` (its peers): the teacher is loaded and timed by
`inference`, the student is built from `modeling` (depth, static classifier) and trained through transformers'
Trainer, its files are read by `data`, scored by `evaluation` and written as `outputs` says.
"""
