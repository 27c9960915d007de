"""The gateway's TOML config: ``models`` (sections), ``references`` (ids that must exist), ``loader`` (file:line problems).

``from gateway.config import GatewayConfig, load_config, check_config`` is the public face.
"""

from gateway.config.alarms import (
    ALARM_KINDS,
    DEFAULT_ESCALATE_S,
    AlarmReceiverConfig,
    AlarmsSection,
    AlarmZoneConfig,
)
from gateway.config.loader import CHECK_HOOKS, ConfigError, Problem, check_config, key_lines, line_of, load_config
from gateway.config.models import (
    ANY_ID,
    BUILTIN_PROFILE_DIR,
    ID,
    AccessSection,
    AntiPassback,
    ApiSection,
    BusConfig,
    DoorConfig,
    GatewayConfig,
    GatewaySection,
    MeterConfig,
    MeteringSection,
    MqttSection,
    OutboxSection,
    ReaderConfig,
    StoreSection,
    Strict,
    TokenEntry,
)
from gateway.config.references import cross_check, find_profile

__all__ = [
    "ALARM_KINDS", "ANY_ID", "BUILTIN_PROFILE_DIR", "DEFAULT_ESCALATE_S", "CHECK_HOOKS", "ID", "ConfigError", "Problem",
    "check_config", "cross_check", "find_profile", "key_lines", "line_of", "load_config",
    "AccessSection",
    "AlarmReceiverConfig",
    "AlarmZoneConfig",
    "AlarmsSection",
    "AntiPassback",
    "ApiSection",
    "BusConfig",
    "DoorConfig",
    "GatewayConfig",
    "GatewaySection",
    "MeterConfig",
    "MeteringSection",
    "MqttSection",
    "OutboxSection",
    "ReaderConfig",
    "StoreSection",
    "Strict",
    "TokenEntry",
]
