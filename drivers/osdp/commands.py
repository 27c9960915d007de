"""The OSDP commands the gateway sends: relay (osdp_OUT), LED (osdp_LED) and buzzer (osdp_BUZ).

Each builder returns the dict libosdp's ``submit_command`` takes; times are in the protocol's
100 ms units, clamped to one byte.
"""

from __future__ import annotations

from typing import Any

# osdp_OUT control codes (OSDP 2.2, 6.9)
OUT_OFF = 1                # permanent off, abort timed operation
OUT_ON = 2                 # permanent on, abort timed operation
OUT_TEMP_ON = 5            # temporary on for timer_count x 100 ms, then back to the permanent state


def _ticks(seconds: float) -> int:
    return max(1, min(255, round(seconds * 10)))


def output_command(number: int, *, on: bool | None = None, pulse_s: float | None = None) -> dict[str, Any]:
    """``pulse_s`` = on for that long (max 25.5 s per command); or permanent ``on``/off."""
    from osdp import Command

    if pulse_s is not None:
        return {"command": Command.Output, "output_no": number, "control_code": OUT_TEMP_ON,
                "timer_count": _ticks(pulse_s)}
    return {"command": Command.Output, "output_no": number, "control_code": OUT_ON if on else OUT_OFF,
            "timer_count": 0}


def led_command(color: str, seconds: float = 2.0) -> dict[str, Any]:
    """``color`` (green, red, amber, ...) for ``seconds``, then back to the reader's idle colour."""
    from osdp import Command, CommandLEDColor

    code = getattr(CommandLEDColor, color.capitalize(), CommandLEDColor.Red)
    ticks = _ticks(seconds)
    return {"command": Command.LED, "reader": 0, "led_number": 0, "control_code": 1, "on_color": code,
            "off_color": CommandLEDColor.Black, "on_count": ticks, "off_count": 0, "temporary": True,
            "timer_count": ticks}


def buzzer_command(times: int = 1, on_s: float = 0.1) -> dict[str, Any]:
    """Beep ``times`` (tone on/off in 100 ms units)."""
    from osdp import Command

    ticks = _ticks(on_s)
    return {"command": Command.Buzzer, "reader": 0, "control_code": 2, "on_count": ticks, "off_count": ticks,
            "rep_count": max(1, min(255, times))}
