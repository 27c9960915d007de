"""Meter profiles as the gateway uses them: check-config reports their defects; broken ones are never polled."""

from __future__ import annotations

from pathlib import Path

from conftest import config_text, free_port, make_config

from gateway.config import check_config
from gateway.metering import check_profiles
from gateway.metering.profiles import runtimes

BROKEN = ('[fields.total_m3]\naddress = 1\ntype = "float32"\n'
          '[fields.flow_m3h]\naddress = 2\ntype = "bogus"\n')


def test_check_config_reports_profile_problems(tmp_path: Path) -> None:
    (tmp_path / "meters").mkdir()
    (tmp_path / "meters" / "broken.toml").write_text(BROKEN)
    extra = ('[metering]\nprofile_dirs = ["meters"]\n[[buses]]\nid = "b1"\ntransport = "tcp"\nport = "127.0.0.1:1502"\n'
             '[[meters]]\nid = "m1"\nbus = "b1"\ndevice_id = 1\nprofile = "broken"\nunit = "1-1-0101"\n'
             '[[meters]]\nid = "m2"\nbus = "b1"\ndevice_id = 2\nprofile = "generic-hot-water"\nunit = "1-1-0102"\n')
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(config_text(tmp_path / "var", 1883, free_port(), extra))
    problems = [str(p) for p in check_config(cfg)]
    assert any("broken.toml:6: fields.flow_m3h.type" in p for p in problems), problems
    assert not any("generic-hot-water" in p for p in problems)


def test_the_hook_is_registered_by_importing_the_area() -> None:
    from gateway import config

    assert check_profiles in config.CHECK_HOOKS


def test_meters_with_a_broken_profile_are_kept_in_error_and_not_planned(tmp_path: Path) -> None:
    (tmp_path / "meters").mkdir()
    (tmp_path / "meters" / "broken.toml").write_text(BROKEN)
    cfg = make_config(tmp_path, (
        '[metering]\nprofile_dirs = ["meters"]\n[[buses]]\nid = "b1"\ntransport = "tcp"\nport = "127.0.0.1:1502"\n'
        '[[meters]]\nid = "m1"\nbus = "b1"\ndevice_id = 1\nprofile = "broken"\nunit = "u-1"\n'
        '[[meters]]\nid = "m3"\nbus = "b1"\ndevice_id = 3\nprofile = "generic-hot-water"\nunit = "u-3"\n'))
    got = runtimes(cfg)
    assert got["m1"].profile is None and "fields.flow_m3h.type" in got["m1"].error and got["m1"].state == "error"
    assert got["m3"].profile is not None and got["m3"].plan and got["m3"].error == ""
