"""Model concepts shared by finetune and evaluate: resolving a checkpoint reference, classification metrics."""
