"""How organisation profiles become embedded texts, and their content hashes."""

from __future__ import annotations

from embeddings import FIELDS, content_hash, profile_texts
from embeddings.profile_text import (
    MAX_DESCRIPTION_WORDS,
    MAX_KEYWORDS_WORDS,
    MAX_LIST_FIELD_WORDS,
    MAX_PROFILE_OFFERS_WORDS,
)


def _texts(**overrides: object) -> dict[str, str]:
    profile: dict[str, object] = {
        "name": "Karolinska Institutet",
        "kind": "university",
        "sectors": ["biotech", "digital_health"],
        "description": "Medical university in Stockholm.",
        "offers": ["clinical trial design", "biobank access"],
        "seeks": ["AI partners for pathology"],
        "keywords": ["oncology", "biobanking"],
    }
    profile.update(overrides)
    return profile_texts(**profile)  # type: ignore[arg-type]


def test_profile_names_the_organisation_its_kind_and_sectors_in_words() -> None:
    profile = _texts()["profile"]

    assert profile.startswith(
        "Karolinska Institutet is a university in biotechnology and digital health."
    )
    assert "Medical university in Stockholm." in profile
    assert "Keywords: oncology, biobanking." in profile
    assert "Offers: clinical trial design; biobank access." in profile


def test_offers_and_seeks_are_their_items_joined() -> None:
    texts = _texts()

    assert set(texts) == set(FIELDS)
    assert texts["offers"] == "clinical trial design; biobank access"
    assert texts["seeks"] == "AI partners for pathology"


def test_fields_without_content_are_left_out() -> None:
    texts = _texts(offers=[], seeks=["  ", ""], description=None, keywords=[])

    assert set(texts) == {"profile"}
    assert texts["profile"] == (
        "Karolinska Institutet is a university in biotechnology and digital health."
    )


def test_unknown_codes_are_spelled_out_and_articles_agree() -> None:
    texts = _texts(kind="OTH", sectors=["animal-health", "marine_biology"])
    assert texts["profile"].startswith("Karolinska Institutet is an organisation in animal health")
    assert "marine biology" in texts["profile"]

    assert _texts(kind="SME", sectors=[])["profile"].startswith(
        "Karolinska Institutet is a small or medium-sized company."
    )


def test_items_are_cleaned_and_repeats_dropped() -> None:
    texts = _texts(offers=["  GMP   manufacturing ;", "gmp manufacturing", "", "assays"])

    assert texts["offers"] == "GMP manufacturing; assays"


def test_long_description_is_cut_at_a_sentence_and_keeps_keywords_and_offers() -> None:
    sentence = "We run translational studies of rare metabolic diseases in children."
    description = " ".join([sentence] * 40)  # 400 words

    profile = _texts(description=description)["profile"]

    description_part = profile.split(". Keywords:")[0]
    assert len(description_part.split()) <= MAX_DESCRIPTION_WORDS + 12  # + the intro sentence
    assert description_part.endswith("children")  # a whole sentence, not a cut word
    assert "Keywords: oncology, biobanking." in profile
    assert "Offers: clinical trial design; biobank access." in profile


def test_description_without_sentence_ends_is_cut_at_a_word() -> None:
    profile = _texts(description="word " * 500)["profile"]

    words = profile.split()
    assert words.count("word…") == 1
    assert words.count("word") == MAX_DESCRIPTION_WORDS - 1


def test_every_part_stays_within_its_word_budget() -> None:
    many = [f"service number {i} with a long explanation" for i in range(100)]

    texts = _texts(description="x " * 1000, keywords=many, offers=many, seeks=many)

    budget = 12 + MAX_DESCRIPTION_WORDS + MAX_KEYWORDS_WORDS + MAX_PROFILE_OFFERS_WORDS + 4
    assert len(texts["profile"].split()) <= budget
    assert len(texts["offers"].split()) <= MAX_LIST_FIELD_WORDS
    assert len(texts["seeks"].split()) <= MAX_LIST_FIELD_WORDS
    assert texts["offers"].startswith("service number 0 with a long explanation; service number 1")


def test_same_profile_gives_the_same_texts() -> None:
    assert _texts() == _texts()


def test_content_hash_is_stable_and_depends_on_model_and_text() -> None:
    digest = content_hash("sentence-transformers/all-MiniLM-L6-v2", "biobank access")

    assert digest == content_hash("sentence-transformers/all-MiniLM-L6-v2", "biobank access")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest != content_hash("hashing-64", "biobank access")
    assert digest != content_hash("sentence-transformers/all-MiniLM-L6-v2", "biobank access ")
    # NUL separates the parts, so moving text across the boundary changes the hash.
    assert content_hash("ab", "c") != content_hash("a", "bc")
