"""References between sections: every id points at something that exists, every named file is there.

Kept apart from the models because these checks need the whole config (a door's reader,
a meter's bus and profile, a zone's doors) and answer with key paths, not exceptions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.config.models import GatewayConfig

Loc = tuple[Any, ...]


def _dupes(items: list[Any], attr: str, section: str) -> list[tuple[Loc, str]]:
    seen: dict[Any, int] = {}
    out = []
    for i, item in enumerate(items):
        key = getattr(item, attr)
        if key in seen:
            out.append(((section, i, attr), f"duplicate id {key!r} (first at {section}[{seen[key]}])"))
        else:
            seen[key] = i
    return out


def _file_exists(cfg: GatewayConfig, value: str, loc: Loc) -> list[tuple[Loc, str]]:
    if value and not cfg.resolve(value).is_file():
        return [(loc, f"file not found: {cfg.resolve(value)}")]
    return []


def cross_check(cfg: GatewayConfig) -> list[tuple[Loc, str]]:
    """References between sections: every id points at something that exists."""
    out: list[tuple[Loc, str]] = []
    for section in ("readers", "doors", "buses", "meters", "alarm_receivers"):
        out += _dupes(getattr(cfg, section), "id", section)
    for check in CHECKS:
        out += check(cfg)
    return out


def _door_refs(cfg: GatewayConfig) -> list[tuple[Loc, str]]:
    readers = {r.id for r in cfg.readers}
    doors = {d.id for d in cfg.doors}
    out: list[tuple[Loc, str]] = [(("doors", i, "reader"), f"no reader with id {d.reader!r}")
           for i, d in enumerate(cfg.doors) if d.reader not in readers]
    for i, ap in enumerate(cfg.access.anti_passback):
        out += [(("access", "anti_passback", i, attr), f"no door with id {getattr(ap, attr)!r}")
                for attr in ("entry", "exit") if getattr(ap, attr) not in doors]
    return out


def _door_outputs(cfg: GatewayConfig) -> list[tuple[Loc, str]]:
    """Relay board outputs: the bus exists and carries no meters (a fire release must never wait behind a
    meter poll), and no two doors share a coil."""
    buses = {b.id for b in cfg.buses}
    meter_buses = {m.bus for m in cfg.meters}
    out: list[tuple[Loc, str]] = []
    seen: dict[tuple[str, int, int], str] = {}
    for i, d in enumerate(cfg.doors):
        if isinstance(d.output, int):
            continue
        o, loc = d.output, ("doors", i, "output")
        if o.bus not in buses:
            out.append(((*loc, "bus"), f"no bus with id {o.bus!r}"))
        elif o.bus in meter_buses:
            out.append(((*loc, "bus"), f"bus {o.bus!r} also polls meters: give relay boards their own bus, so "
                                       "a door release never waits behind a meter poll"))
        k = (o.bus, o.device_id, o.coil)
        if k in seen:
            out.append(((*loc, "coil"), f"coil {o.coil} of device {o.device_id} on bus {o.bus!r} already drives "
                                        f"door {seen[k]!r}"))
        seen[k] = d.id
    return out


def _reader_refs(cfg: GatewayConfig) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    seen_addr: dict[tuple[str, int], str] = {}
    for i, r in enumerate(cfg.readers):
        out += _file_exists(cfg, r.scbk_file, ("readers", i, "scbk_file"))
        if r.driver != "osdp":
            continue
        k = (r.port, r.address)
        if k in seen_addr:
            out.append((("readers", i, "address"),
                        f"OSDP address {r.address} on {r.port} already used by {seen_addr[k]!r}"))
        seen_addr[k] = r.id
    return out


def _meter_refs(cfg: GatewayConfig) -> list[tuple[Loc, str]]:
    buses = {b.id: b for b in cfg.buses}
    out: list[tuple[Loc, str]] = []
    seen_dev: dict[tuple[str, int | str], str] = {}
    for i, m in enumerate(cfg.meters):
        bus = buses.get(m.bus)
        if bus is None:
            out.append((("meters", i, "bus"), f"no bus with id {m.bus!r}"))
        elif (bus.transport == "serial") != (m.protocol == "cjt188"):
            want = 'transport = "serial"' if m.protocol == "cjt188" else "a Modbus transport (rtu, tcp, rtu-over-tcp)"
            out.append((("meters", i, "bus"), f"a {m.protocol} meter needs a bus with {want}; bus {m.bus!r} is "
                                              f"{bus.transport!r}"))
        if m.protocol == "modbus" and find_profile(cfg, m.profile) is None:
            dirs = ", ".join(str(d) for d in cfg.profile_dirs())
            out.append((("meters", i, "profile"), f"no meter profile {m.profile!r} (looked in {dirs})"))
    for i, m in enumerate(cfg.meters):
        key, shown = ("device_id", m.device_id) if m.protocol == "modbus" else ("address", m.address)
        k = (m.bus, shown)
        if k in seen_dev:
            out.append((("meters", i, key), f"{key} {shown} on bus {m.bus!r} already used by {seen_dev[k]!r}"))
        seen_dev[k] = m.id
    return out


def _alarm_refs(cfg: GatewayConfig) -> list[tuple[Loc, str]]:
    receivers = {r.id for r in cfg.alarm_receivers}
    doors = {d.id for d in cfg.doors}
    out: list[tuple[Loc, str]] = []
    egress_buildings = {d.building for d in cfg.doors if d.egress}
    for i, rc in enumerate(cfg.alarm_receivers):
        out += _file_exists(cfg, rc.key_file, ("alarm_receivers", i, "key_file"))
        for acct, name in rc.account_keys.items():
            out += _file_exists(cfg, name, ("alarm_receivers", i, "account_keys", acct))
        if rc.unplaced_fire == "building" and cfg.doors and rc.building not in egress_buildings:
            out.append((("alarm_receivers", i, "building"), f"no egress door in building {rc.building!r}: a fire "
                                                           "this panel cannot place would release no door"))
    for i, z in enumerate(cfg.alarm_zones):
        if z.receiver not in receivers:
            out.append((("alarm_zones", i, "receiver"), f"no alarm receiver with id {z.receiver!r}"))
        out += [(("alarm_zones", i, "unlock_doors"), f"no door with id {door!r} (item {j})")
                for j, door in enumerate(z.unlock_doors) if door not in doors]
    return out


def _mqtt_files(cfg: GatewayConfig) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    for key in ("password_file", "ca_file", "client_cert_file", "client_key_file", "command_hmac_key_file"):
        out += _file_exists(cfg, getattr(cfg.mqtt, key), ("mqtt", key))
    for key in ("tls_cert_file", "tls_key_file"):
        out += _file_exists(cfg, getattr(cfg.api, key), ("api", key))
    return out


#: the reference checks, in the order their problems are reported
CHECKS: tuple[Callable[[GatewayConfig], list[tuple[Loc, str]]], ...] = (
    _door_refs, _door_outputs, _reader_refs, _meter_refs, _alarm_refs, _mqtt_files)


def find_profile(cfg: GatewayConfig, profile_id: str) -> Path | None:
    """The profile file for ``profile_id``: first match in profile_dirs, then the built-in folder."""
    for d in cfg.profile_dirs():
        p = d / f"{profile_id}.toml"
        if p.is_file():
            return p
    return None


def _open_receivers(cfg: GatewayConfig) -> list[tuple[Loc, str]]:
    """A TCP receiver reachable beyond this host that takes any block from anyone (issue 18): anyone on the
    network can send it a fire, which releases the escape doors."""
    out: list[tuple[Loc, str]] = []
    for i, rc in enumerate(cfg.alarm_receivers):
        if not rc.open_to_anyone:
            continue
        out.append((("alarm_receivers", i, "listen"),
                    f"listens on {rc.listen} with neither encryption (key_file/account_keys) nor allow_from: "
                    "anyone who reaches the port can raise a fire and release the escape doors"))
    return out


#: problems that do not stop the gateway: check-config prints them and still passes
WARNINGS: list[Callable[[GatewayConfig], list[tuple[Loc, str]]]] = [_open_receivers]


def warnings(cfg: GatewayConfig) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    for check in WARNINGS:
        out += check(cfg)
    return out
