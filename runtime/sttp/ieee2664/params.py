"""Subscription connection strings: ``key=value;key={nested;value}`` as sent with SUBSCRIBE."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gridbind.sttp.ieee2664.wire import ProtocolError

MAX_CONNECTION_STRING = 1024 * 1024
#: Upper bound of every time span a subscriber may ask for (lag / lead time, publish interval),
#: seconds: a year is far past any deployed setting and keeps tick arithmetic small.
MAX_SECONDS = 366 * 86400.0
#: processingInterval is a signed 32-bit millisecond count on the wire (-1: default pace).
MAX_PROCESSING_INTERVAL = 2**31 - 1
#: Start / stop time constraints are short expressions (``*-10s``, an ISO date-time, ticks).
MAX_TIME_CONSTRAINT = 64


class SettingsError(ProtocolError):
    """A connection-string value out of its range: the SUBSCRIBE is refused, the session stays."""


def parse_connection_string(text: str) -> dict[str, str]:
    """Split ``key=value`` pairs at top-level ``;``; braces group values (outer braces dropped).

    Keys are returned lower-cased (deployed peers treat them case-insensitively).
    """
    if len(text) > MAX_CONNECTION_STRING:
        raise ProtocolError("connection string too long")
    result: dict[str, str] = {}
    depth = 0
    start = 0
    parts: list[str] = []
    for index, char in enumerate(text):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                raise ProtocolError(f"unbalanced '}}' at {index} in connection string")
        elif char == ";" and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    if depth:
        raise ProtocolError("unbalanced '{' in connection string")
    parts.append(text[start:])
    for part in parts:
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise ProtocolError(f"connection string item {part.strip()!r} has no '='")
        value = value.strip()
        if value.startswith("{") and value.endswith("}"):
            value = value[1:-1]
        result[key.strip().lower()] = value
    return result


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("true", "1", "yes", "on")


def _float(
    name: str, value: str | None, default: float, low: float = 0.0, high: float = MAX_SECONDS
) -> float:
    """A finite number in ``[low, high]`` (inf / nan would escape as OverflowError later)."""
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(f"{name} is not a number: {value[:40]!r}") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise SettingsError(f"{name}={value[:40]} is outside {low:g}..{high:g}")
    return number


def _constraint(name: str, value: str | None) -> str:
    text = (value or "").strip()
    if len(text) > MAX_TIME_CONSTRAINT:
        raise SettingsError(f"{name} is longer than {MAX_TIME_CONSTRAINT} characters")
    return text


@dataclass
class SubscriptionSettings:
    """What a subscriber asks for with SUBSCRIBE (the parameters deployed publishers honour)."""

    filter_expression: str = ""
    include_time: bool = True
    throttled: bool = False
    publish_interval: float = 1.0
    lag_time: float = 10.0
    lead_time: float = 5.0
    enable_time_reasonability_check: bool = False
    use_local_clock_as_real_time: bool = False
    use_millisecond_resolution: bool = False
    request_nan_value_filter: bool = False
    processing_interval: int = -1
    udp_port: int = 0  # 0: data over TCP; else the subscriber's UDP data channel port
    start_time: str = ""  # historical replay constraints, as the publisher's time syntax
    stop_time: str = ""
    time_constraint_parameters: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def build(self, assembly: str = "gridbind") -> str:
        """The connection string text, in the order and number formats sttpapi uses."""
        items = [
            f"throttled={self.throttled}",
            f"publishInterval={self.publish_interval:.6f}",
            f"includeTime={self.include_time}",
            f"enableTimeReasonabilityCheck={self.enable_time_reasonability_check}",
            f"lagTime={self.lag_time:.6f}",
            f"leadTime={self.lead_time:.6f}",
            f"useLocalClockAsRealTime={self.use_local_clock_as_real_time}",
            f"processingInterval={self.processing_interval}",
            f"useMillisecondResolution={self.use_millisecond_resolution}",
            f"requestNaNValueFilter={self.request_nan_value_filter}",
            f"assemblyInfo={{source={assembly};version=0.1.0;updatedOn=2026-11-22}}",
        ]
        if self.filter_expression:
            items.append(f"filterExpression={{{self.filter_expression}}}")
        if self.udp_port:
            items.append(f"dataChannel={{localport={self.udp_port}}}")
        if self.start_time:
            items.append(f"startTimeConstraint={self.start_time}")
        if self.stop_time:
            items.append(f"stopTimeConstraint={self.stop_time}")
        if self.time_constraint_parameters:
            items.append(f"timeConstraintParameters={self.time_constraint_parameters}")
        items += [f"{key}={value}" for key, value in self.extra.items()]
        return ";".join(items)

    @classmethod
    def parse(cls, text: str) -> SubscriptionSettings:
        """Settings from a received connection string (unknown keys land in ``extra``).

        Every value is range-checked: :class:`SettingsError` names the first one out of range
        (the publisher answers FAILED); a malformed string raises :class:`ProtocolError`.
        """
        values = parse_connection_string(text)
        known = {
            "filterexpression",
            "includetime",
            "throttled",
            "publishinterval",
            "lagtime",
            "leadtime",
            "enabletimereasonabilitycheck",
            "uselocalclockasrealtime",
            "usemillisecondresolution",
            "requestnanvaluefilter",
            "processinginterval",
            "datachannel",
            "starttimeconstraint",
            "stoptimeconstraint",
            "timeconstraintparameters",
        }
        udp_port = 0
        if "datachannel" in values:
            channel = parse_connection_string(values["datachannel"])
            try:
                udp_port = int(channel.get("localport", "0"))
            except ValueError:
                raise SettingsError("dataChannel localport is not an integer") from None
            if not 0 <= udp_port <= 65535:
                raise SettingsError(f"dataChannel localport {udp_port} out of range")
        interval_text = (values.get("processinginterval") or "-1").strip()
        if len(interval_text) > 12:
            raise SettingsError("processingInterval is too long")
        try:
            interval = int(interval_text)
        except ValueError:
            raise SettingsError("processingInterval is not an integer") from None
        if not -1 <= interval <= MAX_PROCESSING_INTERVAL:
            raise SettingsError(f"processingInterval {interval} is outside -1..2^31-1")
        return cls(
            filter_expression=values.get("filterexpression", ""),
            include_time=_bool(values.get("includetime"), True),
            throttled=_bool(values.get("throttled"), False),
            publish_interval=_float("publishInterval", values.get("publishinterval"), 1.0, low=0.0),
            lag_time=_float("lagTime", values.get("lagtime"), 10.0),
            lead_time=_float("leadTime", values.get("leadtime"), 5.0),
            enable_time_reasonability_check=_bool(
                values.get("enabletimereasonabilitycheck"), False
            ),
            use_local_clock_as_real_time=_bool(values.get("uselocalclockasrealtime"), False),
            use_millisecond_resolution=_bool(values.get("usemillisecondresolution"), False),
            request_nan_value_filter=_bool(values.get("requestnanvaluefilter"), False),
            processing_interval=interval,
            udp_port=udp_port,
            start_time=_constraint("startTimeConstraint", values.get("starttimeconstraint")),
            stop_time=_constraint("stopTimeConstraint", values.get("stoptimeconstraint")),
            time_constraint_parameters=values.get("timeconstraintparameters", ""),
            extra={key: value for key, value in values.items() if key not in known},
        )
