"""What every config section shares: the id patterns, the strict base model, host:port checking."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from gateway.memory import defer_model_builds

defer_model_builds()  # before any model is defined (gateway.memory says why)

ID = r"^[a-z0-9][a-z0-9-]{0,31}$"
ANY_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

#: shipped inside the package (config/meters links here, so the repository layout stays the same)
BUILTIN_PROFILE_DIR = Path(__file__).resolve().parent.parent / "meters"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not (0 <= int(port) <= 65535):
        raise ValueError(f"expected host:port, got {value!r}")
    host = host.strip("[]")
    if host and host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not re.match(r"^[A-Za-z0-9.-]+$", host):
                raise ValueError(f"bad host in {value!r}") from None
    return value


