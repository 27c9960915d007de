"""Meter profiles as the gateway uses them: loaded once per profile for the runtime, and checked by check-config.

The profile format and its parser are the driver's (``drivers/modbus/profile.py``); the
built-in profiles are package data in ``gateway/meters/*.toml``, searched after the
config's ``profile_dirs`` (``gateway.config.find_profile``). A meter whose profile is
missing or broken is kept (its state says ``error``) but never polled; check-config
reports every defect with its file and line before the daemon ever runs. CJ/T 188 meters
have no profile: the standard fixes their data layout.
"""

from __future__ import annotations

import logging
from pathlib import Path

from drivers.modbus import Profile, ProfileError, load_profile, plan_reads
from gateway import config as config_mod
from gateway.config import GatewayConfig, Problem, find_profile
from gateway.metering.models import MeterRuntime
from gateway.metering.rules import HOT_WATER_FAULT_DEADLINE_S, no_hot_water_detect_s

log = logging.getLogger(__name__)


def load_for_runtime(cfg: GatewayConfig, profile_id: str) -> tuple[Profile | None, str]:
    """The profile, or None and why not."""
    path = find_profile(cfg, profile_id)
    if path is None:
        return None, f"no meter profile {profile_id!r}"
    try:
        return load_profile(path), ""
    except ProfileError as exc:
        return None, str(exc)


def runtimes(cfg: GatewayConfig) -> dict[str, MeterRuntime]:
    """One runtime per configured meter, with its profile and read plan (each profile file loaded once)."""
    section = cfg.metering
    profiles: dict[str, tuple[Profile | None, str]] = {}
    out: dict[str, MeterRuntime] = {}
    for mc in cfg.meters:
        if mc.protocol == "cjt188":  # no profile: the standard fixes the data layout (gateway/metering/cjt188.py)
            out[mc.id] = MeterRuntime(cfg=mc, profile=None, plan=())
            continue
        if mc.profile not in profiles:
            profiles[mc.profile] = load_for_runtime(cfg, mc.profile)
        profile, err = profiles[mc.profile]
        # polled(): the valve's state registers are read with every poll (read-back)
        plan = plan_reads(profile.polled(), max_gap=section.max_gap, max_registers=section.max_registers) \
            if profile else ()
        if err:
            log.error("meter %s not polled: %s", mc.id, err)
        out[mc.id] = MeterRuntime(cfg=mc, profile=profile, plan=plan, error=err)
    return out


def check_profiles(cfg: GatewayConfig) -> list[Problem]:
    """Load every profile the config uses; one Problem per defect (file:line: key: message)."""
    problems: list[Problem] = []
    seen: set[Path] = set()
    for mc in cfg.meters:
        path = find_profile(cfg, mc.profile) if mc.protocol == "modbus" else None
        if path is None or path in seen:
            continue
        seen.add(path)
        try:
            profile = load_profile(path)
        except ProfileError as exc:
            problems += [Problem(str(path), line, key, msg) for line, key, msg in exc.problems]
            continue
        if not any(f.name == "total_m3" for f in profile.fields):
            problems.append(Problem(str(path), 1, "fields", "a hot-water profile needs a total_m3 field (billing)"))
    return problems + _supply_floor_problems(cfg)


def _supply_floor_problems(cfg: GatewayConfig) -> list[Problem]:
    """Meters whose "no hot water" floor cannot work, or would be detected too late for the 15-minute rule."""
    out: list[Problem] = []
    after = cfg.metering.no_hot_water_after_s
    for mc in cfg.meters:
        path = find_profile(cfg, mc.profile)
        try:
            profile = load_profile(path) if path is not None else None
        except ProfileError:
            continue  # reported above
        if profile is None:
            continue
        where = f"meters.{mc.id}"
        if mc.supply_floor_c and not profile.supply_temp_field:
            out.append(Problem(str(path), 1, f"{where}.supply_floor_c",
                               f"profile {mc.profile!r} names no supply_temp_field: the floor cannot be watched"))
            continue
        floor = mc.supply_floor_c if mc.supply_floor_c is not None else profile.supply_floor_c
        worst = no_hot_water_detect_s(mc.poll_s, after)
        if floor and profile.supply_temp_field and worst > HOT_WATER_FAULT_DEADLINE_S:
            out.append(Problem(str(path), 1, f"{where}.poll_s",
                               f"no hot water would be raised only up to {worst:.0f} s after it starts (poll_s "
                               f"{mc.poll_s:g}, no_hot_water_after_s {after:g}); a hot-water fault needs a technician "
                               "within 15 minutes: poll this meter more often, or set its supply_floor_c = 0"))
    return out


# check-config runs this once the metering area is imported (the daemon's component list imports it)
if check_profiles not in config_mod.CHECK_HOOKS:
    config_mod.CHECK_HOOKS.append(check_profiles)
