"""Training-data preparation and fine-tuning scripts for blockgen (not part of the library API)."""
