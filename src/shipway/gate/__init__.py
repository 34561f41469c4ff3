"""The statistical validation gate: does a candidate model beat, or at least match, production."""

from __future__ import annotations

from shipway.gate.data import GateData, load_gate_data
from shipway.gate.decision import GateConfig, GateResult, run_gate
from shipway.gate.errors import GateInputError
from shipway.gate.settings import GateOptions, GateSettings, resolve_settings

__all__ = [
    "GateConfig",
    "GateData",
    "GateInputError",
    "GateOptions",
    "GateResult",
    "GateSettings",
    "load_gate_data",
    "resolve_settings",
    "run_gate",
]
