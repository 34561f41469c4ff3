"""The node model cache as a CSI node plugin (`shipway model csi-node`), driver `models.shipway.dev`.

A model pod names its artifact by digest in an inline (ephemeral) `csi` volume; the kubelet asks this
plugin, over the node's CSI socket, to publish it at a folder under the pod. The plugin checks the pod's
own pull credentials against the registry on every publish, pulls the artifact into the node's cache once
(verified blob by blob, shipway.artifacts.cache.NodeCache), and bind-mounts the cached model folder there
read-only: a pod whose digest is already on its node starts without copying a byte.

The render keeps its own copy of DRIVER (shipway.render.node_cache.DRIVER; the render imports nothing from the
artifacts), and tests/unit/layers/test_csi_contract.py holds the two equal. The gRPC plugin lives in `node` (the
service) and `messages` (the CSI v1 messages it speaks).
"""

DRIVER = "models.shipway.dev"
