"""The Hugging Face Hub: the model card and `push` (what goes public, the token, the upload).

It may import `evaluation` (the run record) and the shared leaves.
"""
