"""Shared field types: text that is safe to store, validated country codes, problem responses."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

import pycountry
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)


def _clean_text(value: str) -> str:
    """Reject text a database or a reader would choke on; normalise to NFC."""
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t\r" for ch in value):
        raise ValueError("text must not contain control characters")
    return unicodedata.normalize("NFC", value)


# User-assigned codes in common use by EU registers (Kosovo).
EXTRA_COUNTRY_CODES = frozenset({"XK"})


def _country(value: str) -> str:
    code = value.upper()
    if code not in EXTRA_COUNTRY_CODES and pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return code


def _text(max_length: int, min_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


_clean = AfterValidator(_clean_text)
Name = Annotated[str, _text(300, 1), _clean]
ShortText = Annotated[str, _text(300, 1), _clean]
Keyword = Annotated[str, _text(80, 1), _clean]
Reference = Annotated[str, _text(200, 1), _clean]
LongText = Annotated[str, _text(5000, 0), _clean]
SearchText = Annotated[str, _text(1000, 2), _clean]
# Free text in a query string (name search, references): same rules as body text.
QueryText = Annotated[str, _clean]
# A code such as a cluster or an event group, stored lower-case. The pattern is checked on the
# string itself (then lowered), so the one in the OpenAPI schema is exactly what is accepted;
# it admits both cases because both are. A validator in front of it would hide it from the schema.
SLUG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$"
Slug = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=SLUG_PATTERN), AfterValidator(str.lower)
]
CountryCode = Annotated[
    str,
    StringConstraints(min_length=2, max_length=2, strip_whitespace=True),
    AfterValidator(_country),
]
Year = Annotated[int, Field(ge=1900, le=2100)]
Maturity = Annotated[int, Field(ge=1, le=9, description="Technology readiness level, 1-9.")]


class InputModel(BaseModel):
    """Request bodies: unknown fields are errors, floats must be finite."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)


class Problem(BaseModel):
    """An RFC 9457 problem: what went wrong, in words, with the offending fields where known."""

    type: str = Field(default="about:blank", examples=["https://multihelix.dev/problems/not-found"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["organisation 42 does not exist"])
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Field-level validation errors (422 only)."
    )


def unique(values: list[Any]) -> list[Any]:
    """Keep the first occurrence of each value, in order.

    >>> unique(["a", "b", "a"])
    ['a', 'b']
    """
    return list(dict.fromkeys(values))
