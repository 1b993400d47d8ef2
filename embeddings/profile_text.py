"""How an organisation profile becomes the texts that are embedded, and their content hashes.

Each organisation has up to three vector spaces (``FIELDS``): ``profile`` (who it is and what it
does), ``offers`` and ``seeks``. Matching an organisation's seeks against another's offers is what
makes a recommendation reciprocal, so the three are embedded separately.

The encoder reads at most 256 word pieces and silently drops the rest. Budgets here are in words
(English cluster texts measured 1.2-1.4 word pieces per word, a dense technical profile 1.9), so
the parts that say most about an organisation come first and a long description cannot crowd out
its keywords and offers. Non-English text is denser; there the model may cut the last offers.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Final

FIELDS: Final = ("profile", "offers", "seeks")

# Word budgets, checked against the real tokenizer in tests/integration/test_real_encoder.py:
# a dense English profile at every cap is 125 words, 234 word pieces (window: 256).
MAX_DESCRIPTION_WORDS: Final = 80
MAX_KEYWORDS_WORDS: Final = 16
MAX_PROFILE_OFFERS_WORDS: Final = 24
MAX_LIST_FIELD_WORDS: Final = 150

# Codes seen in the data (CORDIS activity types, the service's own kinds) to the words a
# sentence encoder understands; anything else is spelled out from its code.
_KIND_WORDS: Final = {
    "hes": "higher-education institution",
    "rec": "research organisation",
    "prc": "private company",
    "pub": "public body",
    "oth": "organisation",
    "other": "organisation",
    "sme": "small or medium-sized company",
    "startup": "start-up company",
    "large_company": "large company",
    "corporate": "large company",
    "research_institute": "research institute",
    "public_body": "public body",
    "public_agency": "public agency",
    "cluster": "cluster organisation",
    "hospital": "hospital",
    "university": "university",
    "investor": "investor",
    "patient_organisation": "patient organisation",
}

_SECTOR_WORDS: Final = {
    "biotech": "biotechnology",
    "pharma": "pharmaceuticals",
    "medtech": "medical technology",
    "medical_devices": "medical devices",
    "digital_health": "digital health",
    "ehealth": "digital health",
    "e_health": "digital health",
    "health_data": "health data",
    "ai": "artificial intelligence",
    "diagnostics": "diagnostics",
    "nutrition": "food and nutrition",
    "food": "food and nutrition",
    "foodtech": "food technology",
    "animal_health": "animal health",
    "healthcare": "healthcare services",
    "cosmetics": "cosmetics",
}

_SPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def profile_texts(
    *,
    name: str,
    kind: str,
    sectors: Sequence[str],
    description: str | None,
    offers: Sequence[str],
    seeks: Sequence[str],
    keywords: Sequence[str],
) -> dict[str, str]:
    """Compose the text of each vector space; a field with no content is left out.

    >>> texts = profile_texts(
    ...     name="Biocat", kind="cluster", sectors=["biotech", "medtech"],
    ...     description="Catalan life-science cluster.", offers=["market intelligence"],
    ...     seeks=[], keywords=["innovation vouchers"])
    >>> print(texts["profile"])  # doctest: +NORMALIZE_WHITESPACE
    Biocat is a cluster organisation in biotechnology and medical technology.
    Catalan life-science cluster.
    Keywords: innovation vouchers.
    Offers: market intelligence.
    >>> texts["offers"]
    'market intelligence'
    >>> "seeks" in texts
    False
    """
    offer_items = _clean_items(offers)
    seek_items = _clean_items(seeks)
    texts = {"profile": _profile_text(name, kind, sectors, description, keywords, offer_items)}
    if offer_items:
        texts["offers"] = _join_within(offer_items, MAX_LIST_FIELD_WORDS)
    if seek_items:
        texts["seeks"] = _join_within(seek_items, MAX_LIST_FIELD_WORDS)
    return texts


def content_hash(model_name: str, text: str) -> str:
    """Hex sha256 of the model name and the text, so unchanged text is never re-embedded.

    >>> content_hash("m", "a") == content_hash("m", "a") != content_hash("n", "a")
    True
    >>> content_hash("m", "a")[:12]
    '3495f49bd0e6'
    """
    return hashlib.sha256(f"{model_name}\0{text}".encode()).hexdigest()


def _profile_text(
    name: str,
    kind: str,
    sectors: Sequence[str],
    description: str | None,
    keywords: Sequence[str],
    offer_items: list[str],
) -> str:
    kind_words = _words_for(kind, _KIND_WORDS) or "organisation"
    sector_words = list(dict.fromkeys(_words_for(s, _SECTOR_WORDS) for s in sectors if s.strip()))
    clean_name = _normalise(name)
    intro = f"{clean_name} is {_article(kind_words)} {kind_words}" if clean_name else kind_words
    if sector_words:
        intro += f" in {_and_list(sector_words)}"
    parts = [_capitalise(intro) + "."]
    if description and (summary := _truncate_words(_normalise(description), MAX_DESCRIPTION_WORDS)):
        parts.append(summary if summary[-1] in ".!?…" else summary + ".")
    if keyword_items := _clean_items(keywords):
        parts.append(f"Keywords: {_join_within(keyword_items, MAX_KEYWORDS_WORDS, ', ')}.")
    if offer_items:
        parts.append(f"Offers: {_join_within(offer_items, MAX_PROFILE_OFFERS_WORDS)}.")
    return " ".join(parts)


def _normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _clean_items(items: Sequence[str]) -> list[str]:
    """Whitespace-normalised, non-empty items, first spelling kept for case-insensitive repeats."""
    seen: set[str] = set()
    kept: list[str] = []
    for item in items:
        text = _normalise(item).rstrip(";,. ")
        if text and text.casefold() not in seen:
            seen.add(text.casefold())
            kept.append(text)
    return kept


def _words_for(code: str, vocabulary: dict[str, str]) -> str:
    key = _normalise(code).lower().replace("-", "_").replace(" ", "_")
    return vocabulary.get(key, key.replace("_", " "))


def _article(word: str) -> str:
    # "a university", "a European...", "an organisation": good enough for the words in use.
    starts_with_vowel_sound = word[:1].lower() in "aeio" or (
        word[:1].lower() == "u" and not word.lower().startswith(("uni", "use", "usu"))
    )
    return "an" if starts_with_vowel_sound else "a"


def _and_list(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _truncate_words(text: str, max_words: int) -> str:
    """Cut at a sentence end inside the budget if one keeps most of it, else at a word ("…")."""
    words = text.split(" ")
    if len(words) <= max_words:
        return text
    head = " ".join(words[:max_words])
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    if ends and ends[-1] >= len(head) // 2:
        return head[: ends[-1]]
    return head.rstrip(",;:") + "…"


def _join_within(items: list[str], max_words: int, separator: str = "; ") -> str:
    """Join whole items while they fit the word budget; a first item over budget alone is cut."""
    kept: list[str] = []
    used = 0
    for item in items:
        n_words = item.count(" ") + 1
        if used + n_words > max_words:
            if not kept:
                kept.append(_truncate_words(item, max_words))
            break
        kept.append(item)
        used += n_words
    return separator.join(kept)
