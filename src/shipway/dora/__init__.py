"""DORA's four keys for model delivery, computed from the GitOps history `shipway promote` writes."""
