"""Errors the gate reports to a user."""

from __future__ import annotations

from shipway.errors import ShipwayError


class GateInputError(ShipwayError):
    """The gate's input is unusable (bad file, column, values or options); exit code 2."""

    exit_code = 2
