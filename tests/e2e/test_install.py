"""Packaging: `make install` staged into a DESTDIR (no root, no systemd needed).

Checks the layout a Debian package or a site install gets: a relocated venv in PREFIX
whose scripts name PREFIX (not the staging dir), the systemd unit pointing at it, the
sysusers/tmpfiles entries (user in dialout, /var/lib/estate-gateway), a default config that
passes check-config, and that a second install (an upgrade) keeps the site's config.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.timeout(150)

PREFIX = "/opt/egw-test"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built once (the same command install.sh runs)."""
    out = tmp_path_factory.mktemp("wheel")
    src = out / "src"  # a copy: an in-tree build would write build/ and *.egg-info into the checkout
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "var", "build", "dist", "tests", "bench",
                                                              "*.egg-info", "__pycache__", "node_modules"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
                       capture_output=True, text=True, timeout=120, cwd=out)
    if r.returncode != 0:
        pytest.skip(f"cannot build a wheel here (needs setuptools>=77 from the index): {r.stderr[-500:]}")
    return next(out.glob("estate_gateway-*.whl"))


def make_install(stage: Path, wheel: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WHEEL": str(wheel), "EGW_SKIP_DEPS": "1", "EGW_ID": "gw-b3", "EGW_SITE": "garden-court"}
    env.pop("DESTDIR", None)
    env.pop("PREFIX", None)
    r = subprocess.run(["make", "-s", "install", f"DESTDIR={stage}", f"PREFIX={PREFIX}", f"PY={sys.executable}"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_staged_install_layout_and_upgrade(tmp_path: Path, wheel: Path) -> None:
    stage = tmp_path / "stage"
    first = make_install(stage, wheel)
    venv = stage / PREFIX.lstrip("/")

    # the venv names its final place, never the staging dir
    assert (venv / "bin" / "estate-gateway").read_text().splitlines()[0] == f"#!{PREFIX}/bin/python"
    for f in [venv / "pyvenv.cfg", *(p for p in (venv / "bin").iterdir() if p.is_file() and not p.is_symlink())]:
        assert str(stage) not in f.read_text(errors="replace"), f
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert (site / "gateway" / "daemon.py").is_file() and (site / "drivers").is_dir()
    # the built-in meter profiles travel inside the package: an installed gateway finds them
    assert (site / "gateway" / "meters" / "generic-hot-water.toml").is_file()
    assert (site / "gateway" / "api" / "static" / "console.js").is_file()
    # and it runs from where it was staged (python finds its venv from its own path)
    r = subprocess.run([str(venv / "bin" / "python"), "-c", "import gateway; print(gateway.__version__)"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip(), r.stderr

    unit = (stage / "etc/systemd/system/estate-gateway.service").read_text()
    assert f"ExecStart={PREFIX}/bin/estate-gateway run -c /etc/estate-gateway/gateway.toml" in unit
    assert "/opt/estate-gateway/" not in unit.replace("Documentation=file:///opt/estate-gateway", "")
    assert "User=estate-gateway" in unit and "SupplementaryGroups=dialout" in unit
    sysusers = (stage / "usr/lib/sysusers.d/estate-gateway.conf").read_text()
    assert "u estate-gateway" in sysusers and "m estate-gateway dialout" in sysusers
    assert "d /var/lib/estate-gateway 0750 estate-gateway" in (stage / "usr/lib/tmpfiles.d/estate-gateway.conf").read_text()
    share = venv / "share" / "estate-gateway"
    assert (share / "example.toml").is_file() and (share / "meters" / "generic-hot-water.toml").is_file()
    assert (share / "mosquitto" / "acl").is_file()

    # the default config: valid, data in /var/lib/estate-gateway, no token anyone knows
    conf = stage / "etc/estate-gateway/gateway.toml"
    text = conf.read_text()
    assert 'data_dir = "/var/lib/estate-gateway"' in text and 'id = "gw-b3"' in text and "sha256" not in text
    check = subprocess.run([str(Path(sys.executable).parent / "estate-gateway"), "check-config", "-c", str(conf)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert oct(conf.stat().st_mode & 0o777) == "0o640"

    # upgrade: run it again; the site's edits survive, the wheel is reinstalled
    conf.write_text(text.replace('site = "garden-court"', 'site = "garden-court-east"'))
    second = make_install(stage, wheel)
    assert "keeping the existing /etc/estate-gateway/gateway.toml" in second.stdout
    assert 'site = "garden-court-east"' in conf.read_text()
    assert "writing a default" in first.stdout
    assert (site / "gateway" / "daemon.py").is_file()


def test_live_install_refuses_without_root(tmp_path: Path) -> None:
    """Without DESTDIR it would install into the system: only root may, and it stops before doing anything."""
    argv = ["bash", str(ROOT / "scripts" / "install.sh")]
    cwd = tmp_path
    if os.geteuid() == 0:
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser: cannot try as an ordinary user")
        # root's checkout may sit where other users cannot read (/root/...): give nobody its own copy
        cwd = Path(tempfile.mkdtemp(prefix="egw-install-"))
        (cwd / "scripts").mkdir()
        shutil.copy(ROOT / "scripts" / "install.sh", cwd / "scripts" / "install.sh")
        for p in (cwd, cwd / "scripts", cwd / "scripts" / "install.sh"):
            p.chmod(0o755)
        argv = ["runuser", "-u", "nobody", "--", "bash", str(cwd / "scripts" / "install.sh")]
    env = {**os.environ, "WHEEL": "/nonexistent.whl", "DESTDIR": ""}
    try:
        r = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=cwd)
    finally:
        if cwd != tmp_path:
            shutil.rmtree(cwd, ignore_errors=True)
    assert r.returncode != 0 and "needs root" in r.stderr, r.stdout + r.stderr
