"""Subscription connection strings: ``key=value;key={nested;value}`` as sent with SUBSCRIBE."""

from __future__ import annotations

from dataclasses import dataclass, field

from gridbind.sttp.ieee2664.wire import ProtocolError

MAX_CONNECTION_STRING = 1024 * 1024


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


def _float(value: str | None, default: float) -> float:
    try:
        return float(value) if value not in (None, "") else default
    except ValueError:
        raise ProtocolError(f"not a number in connection string: {value!r}") from None


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
        """Settings from a received connection string (unknown keys land in ``extra``)."""
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
                raise ProtocolError("dataChannel localport is not an integer") from None
            if not 0 <= udp_port <= 65535:
                raise ProtocolError(f"dataChannel localport {udp_port} out of range")
        try:
            interval = int(values.get("processinginterval", "-1") or -1)
        except ValueError:
            raise ProtocolError("processingInterval is not an integer") from None
        return cls(
            filter_expression=values.get("filterexpression", ""),
            include_time=_bool(values.get("includetime"), True),
            throttled=_bool(values.get("throttled"), False),
            publish_interval=_float(values.get("publishinterval"), 1.0),
            lag_time=_float(values.get("lagtime"), 10.0),
            lead_time=_float(values.get("leadtime"), 5.0),
            enable_time_reasonability_check=_bool(
                values.get("enabletimereasonabilitycheck"), False
            ),
            use_local_clock_as_real_time=_bool(values.get("uselocalclockasrealtime"), False),
            use_millisecond_resolution=_bool(values.get("usemillisecondresolution"), False),
            request_nan_value_filter=_bool(values.get("requestnanvaluefilter"), False),
            processing_interval=interval,
            udp_port=udp_port,
            start_time=values.get("starttimeconstraint", ""),
            stop_time=values.get("stoptimeconstraint", ""),
            time_constraint_parameters=values.get("timeconstraintparameters", ""),
            extra={key: value for key, value in values.items() if key not in known},
        )
