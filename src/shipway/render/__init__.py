"""Pure functions from specs to Kubernetes objects (plain dicts) and Helm values; no Pulumi here."""
