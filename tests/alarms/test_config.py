"""Alarm config keys: validation with file:line problems."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_config

from gateway.config import ConfigError

pytestmark = pytest.mark.timeout(30)


def problems(tmp_path: Path, extra: str) -> str:
    with pytest.raises(ConfigError) as exc:
        make_config(tmp_path, extra)
    return str(exc.value)


def test_defaults_and_overrides(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, '[alarms]\nescalate_s = {fire = 30}\ntick_s = 0.5\n')
    assert cfg.alarms.escalate_s == {"fire": 30} and cfg.alarms.tick_s == 0.5
    assert cfg.alarms.day_shift_starts == "08:30" and cfg.alarms.night_shift_starts == "18:30"
    assert cfg.alarms.dedupe_keep_h == 48


def test_bad_alarm_settings(tmp_path: Path) -> None:
    assert "unknown kind(s) flood" in problems(tmp_path, "[alarms]\nescalate_s = {flood = 3}\n")
    assert "before night_shift_starts" in problems(tmp_path, '[alarms]\nday_shift_starts = "19:00"\n')
    assert "alarms.day_shift_starts" in problems(tmp_path, '[alarms]\nday_shift_starts = "25:00"\n')
    text = problems(tmp_path, '[[alarm_receivers]]\nid = "p"\nprotocol = "sia-dc09"\n')
    assert "needs listen" in text
    text = problems(tmp_path, '[[alarm_receivers]]\nid = "p"\nprotocol = "sia-dc09"\nlisten = "127.0.0.1:1"\n'
                              '[[alarm_zones]]\nreceiver = "q"\nzone = 1\nunlock_doors = ["nope"]\n')
    assert "no alarm receiver with id 'q'" in text and "no door with id 'nope'" in text
    assert "gateway.toml:" in text


def test_fire_escalates_first(tmp_path: Path) -> None:
    """Fire's escalation time is the shortest: kinds left out keep their defaults, 0 turns a kind off."""
    text = problems(tmp_path, "[alarms]\nescalate_s = {fire = 120}\n")   # longer than smoke/panic defaults (60)
    assert "alarms.escalate_s: fire = 120 s is longer than panic = 60 s (default)" in text
    assert "fire must escalate first" in text and "gateway.toml:" in text
    text = problems(tmp_path, "[alarms]\nescalate_s = {fire = 30, burglary = 20}\n")
    assert "alarms.escalate_s: fire = 30 s is longer than burglary = 20 s:" in text
    text = problems(tmp_path, "[alarms]\nescalate_s = {fire = 0}\n")   # fire escalation off, others on
    assert "alarms.escalate_s: fire = 0 turns fire escalation off" in text
    # equal is fine; a kind turned off (0) does not count; the file's line is the escalate_s table's
    assert make_config(tmp_path, "[alarms]\nescalate_s = {fire = 60, smoke = 60, panic = 0}\n")
    assert make_config(tmp_path, "[alarms]\nescalate_s = {fire = 5, smoke = 10, panic = 10, burglary = 10}\n")
    off = {k: 0 for k in ("fire", "smoke", "burglary", "panic", "fault", "supervisory", "test", "other")}
    assert make_config(tmp_path, "[alarms]\nescalate_s = {" + ", ".join(f"{k} = 0" for k in off) + "}\n")
    text = problems(tmp_path, "[alarms]\ntick_s = 1\n\n[alarms.escalate_s]\nfire = 90\n")
    line = int(text.split("gateway.toml:")[1].split(":")[0])
    assert (tmp_path / "gateway.toml").read_text().splitlines()[line - 1].startswith("[alarms.escalate_s]")
