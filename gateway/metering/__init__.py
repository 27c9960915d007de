"""Hot-water metering: one scheduler per bus, readings, plausibility, quarter-end billing, valves.

A package, one concern a module (see ``component.py`` for the map). Importing it
registers the profile check with check-config (``profiles.py``).
"""

from gateway.metering.component import MeteringComponent
from gateway.metering.models import MeterRuntime
from gateway.metering.profiles import check_profiles
from gateway.metering.rules import billing_period, last_window_end

__all__ = ["MeterRuntime", "MeteringComponent", "billing_period", "last_window_end", "check_profiles"]
