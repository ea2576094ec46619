"""Where labels are spent: which texts to label next (`suggest`) and which given labels look wrong (`audit`).

It may import every wing but `cli`, `experiments` and `distill` (its peers): texts are read by `data` and `inference`'s
corpus reader, embedded by a checkpoint (`modeling`) or a trained folder (`inference`), and `audit --method
finetune` trains through `training`.
"""
