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


GPU_MODELS: dict[str, GpuModel] = {
    gpu.name: gpu
    for gpu in (
        GpuModel("t4", 16, False, "nvidia-tesla-t4"),
        GpuModel("l4", 24, False, "nvidia-l4"),
        GpuModel("a10g", 24, False, ""),
        GpuModel("l40s", 48, False, ""),
        GpuModel("a100-40gb", 40, True, "nvidia-tesla-a100",
                 ("all-1g.5gb", "all-2g.10gb", "all-3g.20gb", "all-balanced")),
        GpuModel("a100-80gb", 80, True, "nvidia-a100-80gb",
                 ("all-1g.10gb", "all-2g.20gb", "all-3g.40gb", "all-balanced")),
        GpuModel("h100-80gb", 80, True, "nvidia-h100-80gb",
                 ("all-1g.10gb", "all-2g.20gb", "all-3g.40gb", "all-balanced")),
        GpuModel("h200-141gb", 141, True, "nvidia-h200-141gb",
                 ("all-1g.18gb", "all-2g.35gb", "all-3g.71gb", "all-balanced")),
    )
}

# Slices per GPU for the uniform MIG layouts; "all-balanced" mixes sizes, counted as its total.
MIG_SLICES_PER_GPU = {"1g": 7, "2g": 3, "3g": 2, "balanced": 4}


def mig_slices(profile: str) -> int:
    """How many MIG devices one GPU exposes under a mig-parted profile name."""
    if profile == "all-balanced":
        return MIG_SLICES_PER_GPU["balanced"]
    size = profile.removeprefix("all-").split(".")[0]
    return MIG_SLICES_PER_GPU.get(size, 1)
