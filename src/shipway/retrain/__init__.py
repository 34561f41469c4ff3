"""The retraining trigger service: drift and accuracy alerts start the model repository's retraining pipeline."""
