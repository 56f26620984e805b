"""Name and identifier syntax checks, worded exactly as apimachinery words them.

Every ``is_*`` function returns a list of error strings (empty when the value is fine), like Go's
``k8s.io/apimachinery/pkg/util/validation``: callers wrap each string in a ``FieldError.invalid`` so kubectl
prints the same ``Invalid value: "x": a lowercase RFC 1123 subdomain must ...`` text a real cluster prints.

Two wordings of the length error coexist in Kubernetes 1.37 and both are kept: DNS names, config keys and port
names say "must be no more than N characters" (``util/validation``), while label keys and values say
"must be no more than N bytes" (``api/validate/content``). Lengths are counted in UTF-8 bytes, as Go does.

``generate_name_suffix``/``generate_name`` implement ``metadata.generateName`` (5 characters from an alphabet
without vowels, base truncated to 58 characters), and ``safe_encode_string`` the same alphabet mapping that
controllers use for hashes such as ``pod-template-hash``.
"""

from __future__ import annotations

import random
import re

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
DNS1035_LABEL_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63
LABEL_KEY_NAME_MAX_LENGTH = 63
PORT_NAME_MAX_LENGTH = 15

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character"
)
_LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_KEY_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
)
_LABEL_VALUE_FMT = "(" + _LABEL_KEY_FMT + ")?"
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_C_IDENTIFIER_FMT = "[A-Za-z_][A-Za-z0-9_]*"
_C_IDENTIFIER_MSG = (
    "a valid C identifier must start with alphabetic character or '_', "
    "followed by a string of alphanumeric characters or '_'"
)
_ENV_VAR_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"
_ENV_VAR_MSG = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', "
    "and must not start with a digit"
)
_RELAXED_ENV_VAR_MSG = "a valid environment variable name must consist only of printable ASCII characters other than '='"
_CONFIG_MAP_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_MAP_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
_PERCENT_FMT = "[0-9]+%"
_PERCENT_MSG = "a valid percent string must be a numeric string followed by an ending '%'"
_HTTP_HEADER_FMT = "[-A-Za-z0-9]+"
_HTTP_HEADER_MSG = "a valid HTTP header must consist of alphanumeric characters or '-'"


def _full(fmt: str) -> re.Pattern[str]:
    # Go's regexp has no "$ before a final newline" quirk, so anchor with \Z rather than $.
    return re.compile("^(?:" + fmt + r")\Z")


_DNS1123_LABEL_RE = _full(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = _full(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = _full(_DNS1035_LABEL_FMT)
_LABEL_KEY_RE = _full(_LABEL_KEY_FMT)
_LABEL_VALUE_RE = _full(_LABEL_VALUE_FMT)
_C_IDENTIFIER_RE = _full(_C_IDENTIFIER_FMT)
_ENV_VAR_RE = _full(_ENV_VAR_FMT)
_CONFIG_MAP_KEY_RE = _full(_CONFIG_MAP_KEY_FMT)
_PERCENT_RE = _full(_PERCENT_FMT)
_HTTP_HEADER_RE = _full(_HTTP_HEADER_FMT)
_PORT_NAME_CHARSET_RE = _full("[-a-z0-9]+")


def max_len_error(length: int) -> str:
    """``util/validation.MaxLenError``: DNS names, config keys, port names."""
    return f"must be no more than {length} characters"


def max_len_bytes_error(length: int) -> str:
    """``validate/content.MaxLenError``: label keys and values."""
    return f"must be no more than {length} bytes"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """``RegexError``: the message, up to three examples and the regex, as apimachinery formats them."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def empty_error() -> str:
    return "must be non-empty"


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


def _blen(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def is_dns1123_label(value: str) -> list[str]:
    """A DNS label (RFC 1123): namespaces, most names that become hostnames."""
    errs: list[str] = []
    if _blen(value) > DNS1123_LABEL_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_LABEL_MAX_LENGTH))
    if not _DNS1123_LABEL_RE.match(value):
        if _DNS1123_SUBDOMAIN_RE.match(value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    """A DNS subdomain (RFC 1123): the name rule for most kinds."""
    errs: list[str] = []
    if _blen(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def _content_dns1123_subdomain(value: str) -> list[str]:
    # The label-key prefix check lives in validate/content, whose length error counts bytes.
    errs: list[str] = []
    if _blen(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(max_len_bytes_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    """A DNS-1035 label: Service names, container-port names' stricter cousins."""
    errs: list[str] = []
    if _blen(value) > DNS1035_LABEL_MAX_LENGTH:
        errs.append(max_len_error(DNS1035_LABEL_MAX_LENGTH))
    if not _DNS1035_LABEL_RE.match(value):
        errs.append(regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """A label key / qualified name: ``[prefix/]name``, prefix a DNS subdomain, name up to 63 bytes."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + empty_error())
        else:
            errs.extend("prefix part " + msg for msg in _content_dns1123_subdomain(prefix))
    else:
        return [
            "a valid label key "
            + regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part " + empty_error())
    elif _blen(name) > LABEL_KEY_NAME_MAX_LENGTH:
        errs.append("name part " + max_len_bytes_error(LABEL_KEY_NAME_MAX_LENGTH))
    if not _LABEL_KEY_RE.match(name):
        errs.append("name part " + regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc"))
    return errs


is_label_key = is_qualified_name


def is_valid_label_value(value: str) -> list[str]:
    """A label value: empty, or up to 63 bytes of ``[A-Za-z0-9_.-]`` starting and ending alphanumeric."""
    errs: list[str] = []
    if _blen(value) > LABEL_VALUE_MAX_LENGTH:
        errs.append(max_len_bytes_error(LABEL_VALUE_MAX_LENGTH))
    if not _LABEL_VALUE_RE.match(value):
        errs.append(regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def is_c_identifier(value: str) -> list[str]:
    """A C identifier (no length check)."""
    if _C_IDENTIFIER_RE.match(value):
        return []
    return [regex_error(_C_IDENTIFIER_MSG, _C_IDENTIFIER_FMT, "my_name", "MY_NAME", "MyName")]


def _chdir_prefix_errors(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_env_var_name(value: str) -> list[str]:
    """The strict (pre-1.34) environment variable name rule. Kubernetes 1.37 validates with the relaxed one."""
    errs: list[str] = []
    if not _ENV_VAR_RE.match(value):
        errs.append(regex_error(_ENV_VAR_MSG, _ENV_VAR_FMT, "my.env-name", "MY_ENV.NAME", "MyEnvName1"))
    errs.extend(_chdir_prefix_errors(value))
    return errs


def is_relaxed_env_var_name(value: str) -> list[str]:
    """The environment variable name rule in force in 1.37 (RelaxedEnvironmentVariableValidation is GA):
    any printable ASCII except '='."""
    errs: list[str] = []
    if not value:
        errs.append("environment variable name " + empty_error())
    if any(not (" " <= ch <= "~") or ch == "=" for ch in value):
        errs.append(_RELAXED_ENV_VAR_MSG)
    return errs


def is_config_map_key(value: str) -> list[str]:
    """A key in a ConfigMap's or Secret's data."""
    errs: list[str] = []
    if _blen(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _CONFIG_MAP_KEY_RE.match(value):
        errs.append(regex_error(_CONFIG_MAP_KEY_MSG, _CONFIG_MAP_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    errs.extend(_chdir_prefix_errors(value))
    return errs


def is_valid_port_name(port: str) -> list[str]:
    """An IANA service name (RFC 6335), lower case only: container and service port names."""
    errs: list[str] = []
    if _blen(port) > PORT_NAME_MAX_LENGTH:
        errs.append(max_len_error(PORT_NAME_MAX_LENGTH))
    if not _PORT_NAME_CHARSET_RE.match(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not any("a" <= ch <= "z" for ch in port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_valid_port_num(port: int) -> list[str]:
    """A non-zero TCP/UDP port number."""
    return [] if 1 <= port <= 65535 else [inclusive_range_error(1, 65535)]


def is_in_range(value: int, lo: int, hi: int) -> list[str]:
    return [] if lo <= value <= hi else [inclusive_range_error(lo, hi)]


def is_valid_percent(value: str) -> list[str]:
    if _PERCENT_RE.match(value):
        return []
    return [regex_error(_PERCENT_MSG, _PERCENT_FMT, "1%", "93%")]


def is_http_header_name(value: str) -> list[str]:
    if _HTTP_HEADER_RE.match(value):
        return []
    return [regex_error(_HTTP_HEADER_MSG, _HTTP_HEADER_FMT, "X-Header-Name")]


def is_path_segment_name(name: str) -> list[str]:
    """A name that must travel as one URL path segment (``may not be '..'``, ``may not contain '/'``)."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{bad}'" for bad in ("/", "%") if bad in name]


def _mask_trailing_dash(name: str) -> str:
    # As apimachinery does for generateName prefixes: the dash will be followed by a suffix, so the check
    # replaces it (and, faithfully, the character before it) with a letter.
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool = False) -> list[str]:
    """``ValidateNameFunc`` for kinds named by DNS subdomain; ``prefix`` for a ``generateName``."""
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool = False) -> list[str]:
    """``ValidateNameFunc`` for kinds named by DNS label (Namespace, ...)."""
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool = False) -> list[str]:
    """``ValidateNameFunc`` for kinds named by DNS-1035 label (Service)."""
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
NAME_SUFFIX_LENGTH = 5
_MAX_NAME_LENGTH = 63
MAX_GENERATED_NAME_BASE_LENGTH = _MAX_NAME_LENGTH - NAME_SUFFIX_LENGTH


def generate_name_suffix(length: int = NAME_SUFFIX_LENGTH) -> str:
    """Random characters for ``generateName``, from the vowel-free alphabet Kubernetes uses."""
    return "".join(random.choice(NAME_SUFFIX_ALPHABET) for _ in range(length))


def generate_name(base: str) -> str:
    """``SimpleNameGenerator.GenerateName``: base cut to 58 characters, then 5 random characters."""
    return base[:MAX_GENERATED_NAME_BASE_LENGTH] + generate_name_suffix()


def safe_encode_string(value: str) -> str:
    """``rand.SafeEncodeString``: each character mapped onto the vowel-free alphabet (``pod-template-hash``)."""
    n = len(NAME_SUFFIX_ALPHABET)
    return "".join(NAME_SUFFIX_ALPHABET[ord(ch) % n] for ch in value)
