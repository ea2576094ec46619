"""Model card templates (Jinja2, rendered by huggingface_hub's ModelCard.from_template)."""
