"""The MLflow registry: the one client, where the store lives, lineage, integrity, tags and the model card."""
