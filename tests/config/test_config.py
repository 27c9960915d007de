"""check-config: every problem as FILE:LINE: key.path: message, exit 2."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import BIN, ROOT

GOOD = """\
[gateway]
id = "gw-b3"
site = "garden-court"
data_dir = "var"

[mqtt]
url = "mqtt://127.0.0.1:1883"

[[readers]]
id = "r1"
driver = "osdp"
port = "socket://127.0.0.1:7001"

[[doors]]
id = "d1"
reader = "r1"
"""


def check(tmp_path: Path, text: str) -> tuple[int, str]:
    path = tmp_path / "gw.toml"
    path.write_text(text)
    res = subprocess.run([str(BIN), "check-config", "-c", str(path)], capture_output=True, text=True, timeout=60)
    return res.returncode, res.stderr


def test_good_config_passes(tmp_path: Path) -> None:
    rc, err = check(tmp_path, GOOD)
    assert rc == 0, err


@pytest.mark.parametrize(
    "text, line, key, words",
    [
        (GOOD.replace('data_dir = "var"', 'data_dir = "var"\ncolour = "red"'), 5, "gateway.colour", "unknown key"),
        (GOOD.replace('id = "r1"', 'id = "r1"\nbaud = "fast"'), 11, "readers[0].baud", "must be a whole number"),
        (GOOD.replace('reader = "r1"', 'reader = "r9"'), 16, "doors[0].reader", "no reader"),
        (GOOD.replace('id = "gw-b3"', 'id = "GW B3"'), 2, "gateway.id", "use lowercase letters, digits and '-'"),
        (GOOD.replace('url = "mqtt://127.0.0.1:1883"', 'url = "http://x"'), 7, "mqtt.url", "use mqtt://host:port, or mqtts://host:port"),
        (GOOD.replace('[mqtt]\nurl = "mqtt://127.0.0.1:1883"\n', ''), 1, "mqtt", "required"),
        (GOOD + '\n[[doors]]\nid = "d1"\nreader = "r1"\n', 19, "doors[1].id", "duplicate"),
        (GOOD.replace('driver = "osdp"', 'driver = osdp'), 11, "(syntax)", "TOML"),
        (GOOD + '\n[gateway2]\n', 18, "gateway2", "unknown section 'gateway2': did you mean gateway?"),
    ],
)
def test_bad_config_names_file_line_and_key(tmp_path: Path, text: str, line: int, key: str, words: str) -> None:
    rc, err = check(tmp_path, text)
    assert rc == 2
    first = err.strip().splitlines()[0]
    assert first.startswith(f"{tmp_path / 'gw.toml'}:{line}: {key}: "), err
    assert words.lower() in first.lower(), err


def test_every_problem_is_reported(tmp_path: Path) -> None:
    text = GOOD.replace('reader = "r1"', 'reader = "r9"') + '\n[[meters]]\nid = "m1"\nbus = "nope"\ndevice_id = 1\nprofile = "no-such"\nunit = "1-1-101"\n'
    rc, err = check(tmp_path, text)
    assert rc == 2
    lines = err.strip().splitlines()
    assert any("doors[0].reader" in x for x in lines)
    assert any("meters[0].bus" in x and ":20:" in x for x in lines), err
    assert any("meters[0].profile" in x for x in lines)


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    res = subprocess.run([str(BIN), "check-config", "-c", str(tmp_path / "missing.toml")], capture_output=True, text=True)
    assert res.returncode == 2 and "cannot read" in res.stderr
    rc, err = check(tmp_path, GOOD.replace('port = "socket://127.0.0.1:7001"', 'port = "socket://127.0.0.1:7001"\nscbk_file = "keys/r1.key"'))
    assert rc == 2 and "readers[0].scbk_file: file not found" in err


def test_run_with_bad_config_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(GOOD.replace('reader = "r1"', 'reader = "r9"'))
    res = subprocess.run([str(BIN), "run", "-c", str(path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "doors[0].reader" in res.stderr


def test_usage_error_exits_2() -> None:
    res = subprocess.run([str(BIN), "frobnicate"], capture_output=True, text=True)
    assert res.returncode == 2


def test_shipped_configs_are_valid() -> None:
    root = ROOT
    for name in ("example.toml", "demo.toml"):
        res = subprocess.run([str(BIN), "check-config", "-c", str(root / "config" / name)], capture_output=True, text=True)
        assert res.returncode == 0, f"{name}: {res.stderr}"


def test_example_config_shows_every_key() -> None:
    """config/example.toml is the reference: every key the models know appears in it."""
    from typing import get_args, get_origin

    from pydantic import BaseModel

    from gateway.config import GatewayConfig, key_lines

    root = ROOT
    lines = key_lines((root / "config" / "example.toml").read_text())
    present = {tuple(p for p in loc if not isinstance(p, int)) for loc in lines}
    missing = []

    def walk(model: type[BaseModel], prefix: tuple[str, ...]) -> None:
        for name, field in model.model_fields.items():
            if field.exclude:
                continue
            path = prefix + (name,)
            if path not in present:
                missing.append(".".join(path))
            ann = field.annotation
            inner = get_args(ann)[0] if get_origin(ann) is list and get_args(ann) else ann
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                walk(inner, path)

    walk(GatewayConfig, ())
    assert not missing, f"keys missing from config/example.toml: {missing}"


def test_token_new_prints_a_token_and_its_config_lines() -> None:
    import hashlib
    import subprocess

    from conftest import BIN

    r = subprocess.run([str(BIN), "token", "new", "--role", "operator", "--name", "duty-room"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token.startswith("egw_") and len(token) > 40
    assert f'sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"' in r.stderr
    assert 'name = "duty-room"' in r.stderr and 'role = "operator"' in r.stderr
    for bad in (["--role", "root", "--name", "x"], ["--role", "admin", "--name", "a b"]):
        r = subprocess.run([str(BIN), "token", "new", *bad], capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and r.stdout == "", r.stderr


NINE_MISTAKES = """\
[gateway]
id = "GW 1"
site = "garden"
timezone = "Beijing"

[mqtt]
url = "http://broker:1883"

[[api.tokens]]
name = "op"
role = "operator"
sha256 = "my-secret-token"

[[readers]]
id = "r1"
driver = "osdp"
port = "/dev/ttyUSB0"
baud = "fast"

[[door]]
id = "d1"

[[doors]]
id = "d2"
reader = "r9"
held_open_sec = 30

[[meters]]
id = "m1"
bus = "nope"
profile = "generic-hot-water"
unit = "1-101"
device_id = 1
"""


def test_all_mistakes_in_one_run_in_words_with_the_fix(tmp_path: Path) -> None:
    """Schema and reference mistakes together, in file order, each saying what to do (issue 15)."""
    rc, err = check(tmp_path, NINE_MISTAKES)
    assert rc == 2
    got = [line.split(": ", 1)[1] for line in err.strip().splitlines()]
    assert got == [
        "gateway.data_dir: required key is missing: add `data_dir = …` here",
        "gateway.id: 'GW 1' is not valid: use lowercase letters, digits and '-' (1 to 32, starting with a letter or "
        "digit), e.g. 'garden-court'",
        "gateway.timezone: unknown timezone 'Beijing': did you mean 'Asia/Shanghai'?",
        "mqtt.url: 'http://broker:1883' is not valid: use mqtt://host:port, or mqtts://host:port for TLS (no path), "
        "e.g. 'mqtt://10.0.0.5:1883'",
        "api.tokens[0].sha256: this value is not valid: the SHA-256 of the token: 64 lowercase hex digits, never the "
        "token itself; make one with `estate-gateway token new --role ROLE --name NAME`",
        "readers[0].baud: 'fast' must be a whole number, without quotes",
        "door: unknown section 'door': did you mean [[doors]]?",
        "doors[0].reader: no reader with id 'r9'",
        "doors[0].held_open_sec: unknown key 'held_open_sec': did you mean held_open_s?",
        "meters[0].bus: no bus with id 'nope'",
    ], err
    assert "my-secret-token" not in err  # a token pasted where its hash belongs is never echoed


@pytest.mark.parametrize(("typed", "meant"), [
    ("Beijing", "Asia/Shanghai"), ("Shanghia", "Asia/Shanghai"), ("asia/shanghai", "Asia/Shanghai"),
    ("Hong Kong", "Asia/Hong_Kong"), ("UTC+8", "Asia/Shanghai"),
])
def test_timezone_did_you_mean(typed: str, meant: str) -> None:
    from gateway.config.advice import suggest_timezone

    assert suggest_timezone(typed) == meant


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["gateway", "mqtt", "doors", "readers", "door", "meters", "api", "x"]),
                       st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                                    lambda inner: st.lists(inner, max_size=3)
                                    | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8),
                       max_size=6))
def test_any_config_gives_problems_never_a_crash(data: dict) -> None:
    """Whatever the TOML holds, validation answers a config or ConfigError with lines: never another exception."""
    from gateway.config import ConfigError
    from gateway.config.loader import build

    try:
        build(data, "gw.toml", {}, Path("/nonexistent"))
    except ConfigError as exc:
        assert exc.problems and all(p.line >= 0 for p in exc.problems)


def test_every_pattern_in_the_config_has_words() -> None:
    """A new key with a pattern must say in words what it wants (no regex ever reaches a technician)."""
    from pydantic import BaseModel

    import gateway.config as config
    from gateway.config.advice import PATTERN_ADVICE

    missing = []
    for obj in vars(config).values():
        if isinstance(obj, type) and issubclass(obj, BaseModel):
            for name, field in obj.model_fields.items():
                for meta in field.metadata:
                    pattern = getattr(meta, "pattern", None)
                    if pattern is not None and pattern not in PATTERN_ADVICE:
                        missing.append(f"{obj.__name__}.{name}: {pattern}")
    assert not missing, missing


@pytest.mark.parametrize(("listen", "is_open"), [
    ("127.0.0.1:7000", False), ("127.0.0.2:7000", False), ("[::1]:7000", False), ("localhost:7000", False),
    ("[::ffff:127.0.0.1]:7000", False), ("0.0.0.0:7000", True), (":7000", True), ("10.0.5.1:7000", True),
    ("[::]:7000", True), ("panel-gw.local:7000", True)])
def test_one_test_says_whether_a_receiver_is_open_to_anyone(listen: str, is_open: bool) -> None:
    """check-config's warning and the daemon's start-up warning both read AlarmReceiverConfig.open_to_anyone."""
    from gateway.config.alarms import AlarmReceiverConfig

    rc = AlarmReceiverConfig.model_validate({"id": "fire", "protocol": "gb26875", "listen": listen})
    assert rc.open_to_anyone is is_open
    assert not AlarmReceiverConfig.model_validate(
        {"id": "fire", "protocol": "gb26875", "listen": listen, "allow_from": ["10.0.0.0/8"]}).open_to_anyone
