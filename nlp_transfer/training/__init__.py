"""One run and what it needs: `fine_tune`'s phases, the Trainer subclass, recipes, callbacks, class weights,
resume, the final evaluation, saving and its verification; also `adapt` (masked-LM pretraining) and
`recalibration` (a saved folder's temperature refitted), which write model folders the same way.

It may import `inference`, `hub`, `modeling`, `data`, `config`, `evaluation` and the shared leaves.
"""
