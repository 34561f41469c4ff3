"""The statistical validation gate: does a candidate model beat, or at least match, production."""

from __future__ import annotations

from shipway.gate.data import GateData, load_gate_data
from shipway.gate.decision import GateConfig, GateResult, run_gate
from shipway.gate.errors import GateInputError

__all__ = ["GateConfig", "GateData", "GateInputError", "GateResult", "load_gate_data", "run_gate"]
