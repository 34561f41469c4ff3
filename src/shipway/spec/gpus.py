"""What Shipway knows about each GPU model a pool may name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuModel:
    """Facts about one GPU model: its cloud names, memory and MIG support."""

    name: str
    memory_gib: int
    mig_capable: bool
    gke_accelerator: str
    mig_profiles: tuple[str, ...] = ()
    # EC2 instance families carrying this GPU (g5.2xlarge is family g5), and GKE machine-type prefixes.
    ec2_families: tuple[str, ...] = ()
    gke_machines: tuple[str, ...] = ()


GPU_MODELS: dict[str, GpuModel] = {
    gpu.name: gpu
    for gpu in (
        # T4s attach to GKE's N1 machines as guest accelerators.
        GpuModel("t4", 16, False, "nvidia-tesla-t4", ec2_families=("g4dn",), gke_machines=("n1-",)),
        GpuModel("l4", 24, False, "nvidia-l4", ec2_families=("g6", "gr6"), gke_machines=("g2-",)),
        GpuModel("a10g", 24, False, "", ec2_families=("g5",)),
        GpuModel("l40s", 48, False, "", ec2_families=("g6e",)),
        GpuModel("a100-40gb", 40, True, "nvidia-tesla-a100",
                 ("all-1g.5gb", "all-2g.10gb", "all-3g.20gb", "all-balanced"),
                 ec2_families=("p4d",), gke_machines=("a2-highgpu-", "a2-megagpu-")),
        GpuModel("a100-80gb", 80, True, "nvidia-a100-80gb",
                 ("all-1g.10gb", "all-2g.20gb", "all-3g.40gb", "all-balanced"),
                 ec2_families=("p4de",), gke_machines=("a2-ultragpu-",)),
        GpuModel("h100-80gb", 80, True, "nvidia-h100-80gb",
                 ("all-1g.10gb", "all-2g.20gb", "all-3g.40gb", "all-balanced"),
                 ec2_families=("p5",), gke_machines=("a3-highgpu-", "a3-megagpu-", "a3-edgegpu-")),
        GpuModel("h200-141gb", 141, True, "nvidia-h200-141gb",
                 ("all-1g.18gb", "all-2g.35gb", "all-3g.71gb", "all-balanced"),
                 ec2_families=("p5e", "p5en"), gke_machines=("a3-ultragpu-",)),
    )
}

# EC2 families whose on-demand capacity is scarce enough that AWS sells it through capacity reservations.
RESERVED_EC2_FAMILIES = ("p4d", "p4de", "p5", "p5e", "p5en")


def ec2_family(instance_type: str) -> str:
    """The EC2 instance family of an instance type: g5.2xlarge -> g5."""
    return instance_type.split(".", 1)[0]


def gpu_of_instance(cluster_kind: str, instance_type: str) -> GpuModel | None:
    """The GPU model an EKS instance type or GKE machine type carries, when Shipway knows it."""
    for gpu in GPU_MODELS.values():
        if cluster_kind == "eks" and ec2_family(instance_type) in gpu.ec2_families:
            return gpu
        if cluster_kind == "gke" and instance_type.startswith(gpu.gke_machines):
            return gpu
    return None

# Slices per GPU for the uniform MIG layouts; "all-balanced" mixes sizes, counted as its total.
MIG_SLICES_PER_GPU = {"1g": 7, "2g": 3, "3g": 2, "balanced": 4}


def mig_slices(profile: str) -> int:
    """How many MIG devices one GPU exposes under a mig-parted profile name."""
    if profile == "all-balanced":
        return MIG_SLICES_PER_GPU["balanced"]
    size = profile.removeprefix("all-").split(".")[0]
    return MIG_SLICES_PER_GPU.get(size, 1)
