"""The container images a platform and its models run: listed for review, copied to a mirror for air gaps."""
