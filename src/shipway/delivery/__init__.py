"""Model delivery: a ModelSpec rendered into Kubernetes objects, and promoted through the GitOps repo."""
