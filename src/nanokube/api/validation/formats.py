"""String-format checks the validators use, each returning Go-worded messages (empty when fine).

The checks themselves are ``nanokube.api.names`` (apimachinery's ``util/validation`` and ``content``
packages, message for message); this module only names the subset validation needs in one place and adds
the IP check, which ``names`` does not carry.
"""

from __future__ import annotations

import ipaddress

from nanokube.api.names import (
    is_config_map_key,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_http_header_name,
    is_path_segment_name,
    is_qualified_name,
    is_relaxed_env_var_name,
    is_valid_label_value,
    is_valid_percent,
    is_valid_port_name,
    is_valid_port_num,
    name_is_dns1035_label,
    name_is_dns_label,
    name_is_dns_subdomain,
)

__all__ = [
    "is_config_map_key", "is_dns1035_label", "is_dns1123_label", "is_dns1123_subdomain", "is_http_header_name",
    "is_path_segment_name", "is_qualified_name", "is_relaxed_env_var_name", "is_valid_ip", "is_valid_label_value",
    "is_valid_percent", "is_valid_port_name", "is_valid_port_num", "name_is_dns1035_label", "name_is_dns_label",
    "name_is_dns_subdomain",
]


def is_valid_ip(value: str) -> list[str]:
    """``IsValidIP`` messages (strict form: no IPv4-mapped IPv6, canonical text)."""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ["must not be an IPv4-mapped IPv6 address"]
    if str(ip) != value:
        return [f'must be in canonical form ("{ip}")']
    return []
