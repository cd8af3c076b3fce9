"""Language codes: what pages and tokens say, and what each provider calls the same language.

Fairwire speaks ISO 639-1 (``en``, ``zh``, ``es``), lower case, as the first subtag of a BCP 47
tag (RFC 5646 §2.1: ``zh-Hans-CN`` and ``en-GB`` are ``zh`` and ``en`` here: the trade-fair text
is translated per language, not per region). Apertium names its pairs in ISO 639-3 (``eng-spa``);
LibreTranslate uses 639-1; DeepL upper-cases them and wants a variant for some targets.
"""

from __future__ import annotations

# ISO 639-3 (Apertium's pair names) for the 639-1 codes of the languages Apertium pairs exist
# for in Debian, and the fair's own (Chinese has no Apertium pair, but has a code).
ISO_639_3 = {
    "ar": "ara", "bg": "bul", "ca": "cat", "cs": "ces", "cy": "cym", "da": "dan", "de": "deu",
    "el": "ell", "en": "eng", "eo": "epo", "es": "spa", "eu": "eus", "fi": "fin", "fr": "fra",
    "gl": "glg", "he": "heb", "hi": "hin", "hu": "hun", "id": "ind", "is": "isl", "it": "ita",
    "ja": "jpn", "kk": "kaz", "ko": "kor", "mk": "mkd", "ms": "msa", "mt": "mlt", "nb": "nob",
    "nl": "nld", "nn": "nno", "oc": "oci", "pl": "pol", "pt": "por", "ro": "ron", "ru": "rus",
    "sk": "slk", "sl": "slv", "sq": "sqi", "sr": "srp", "sv": "swe", "tr": "tur", "uk": "ukr",
    "ur": "urd", "vi": "vie", "zh": "zho",
}
ISO_639_1 = {three: two for two, three in ISO_639_3.items()}
# DeepL target codes that need a variant (its /v2/translate documentation): the plain code is
# deprecated or refused for these targets.
DEEPL_TARGET_VARIANTS = {"en": "EN-US", "pt": "PT-PT", "zh": "ZH-HANS"}


def normalize(tag: str | None) -> str | None:
    """The 639-1 language of a BCP 47 tag (``"zh-Hans-CN"`` → ``"zh"``), None when there is
    none or it is not a language subtag (two or three letters)."""
    if not tag:
        return None
    primary = tag.strip().replace("_", "-").split("-", 1)[0].lower()
    if not primary.isascii() or not primary.isalpha() or len(primary) not in (2, 3):
        return None
    return ISO_639_1.get(primary, primary) if len(primary) == 3 else primary


def to_apertium(language: str) -> str | None:
    return ISO_639_3.get(language)


def from_apertium(code: str) -> str | None:
    """The 639-1 code of an Apertium language code (``eng``; variants such as ``spa_VE``,
    ``por_BR`` are the language's)."""
    base = code.split("_", 1)[0].lower()
    return ISO_639_1.get(base)


def to_deepl_target(language: str) -> str:
    return DEEPL_TARGET_VARIANTS.get(language, language.upper())


def from_deepl(code: str) -> str | None:
    return normalize(code)
