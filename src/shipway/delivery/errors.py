"""Delivery's user errors: a model the platform cannot run, or a promotion that must not happen."""

from __future__ import annotations

from shipway.errors import ShipwayError


class RenderRefused(ShipwayError):
    """The model asks for something the platform profile does not offer; the message says what and why."""

    exit_code = 2


class BadProfile(ShipwayError):
    """The --platform file is unreadable or is not a Shipway platform profile."""

    exit_code = 2


class PromotionRefused(ShipwayError):
    """A promotion that would ship an unproven version, or cannot be made in this repository."""

    exit_code = 1
