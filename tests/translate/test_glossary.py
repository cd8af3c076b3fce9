"""The trade glossary around a provider: terms kept or rendered, never a lost message."""

from pathlib import Path

import pytest

from translate.glossary import Glossary


def test_incoterms_and_units_survive_a_provider_that_translates_everything() -> None:
    protected, restore = Glossary().protect("Price FOB Shanghai, MOQ 500 pcs", "es")
    assert "FOB" not in protected and "MOQ" not in protected and "pcs" not in protected
    # What a provider does to the rest of the sentence, placeholders left alone:
    translated = protected.replace("Price", "Precio")
    assert restore(translated) == "Precio FOB Shanghai, MOQ 500 pcs"


def test_only_whole_words_are_terms() -> None:
    protected, _ = Glossary().protect("CIFRA and DEXWORK are not Incoterms", "es")
    assert protected == "CIFRA and DEXWORK are not Incoterms"


def test_mapped_terms_take_the_target_language_s_rendering(tmp_path: Path) -> None:
    path = tmp_path / "show.toml"
    path.write_text('verbatim = ["Acme Robotics"]\n[mapped.booth]\nes = "stand"\n',
                    encoding="utf-8")
    glossary = Glossary.load(path)
    protected, restore = glossary.protect("Visit the Acme Robotics booth", "es")
    assert "Acme" not in protected and "booth" not in protected
    assert restore(protected.replace("Visit the", "Visite el")) == (
        "Visite el Acme Robotics stand")
    # A language without a rendering keeps the term as written.
    _, restore_de = glossary.protect("booth", "de")
    assert restore_de(glossary.protect("booth", "de")[0]) == "booth"


def test_a_placeholder_the_provider_dropped_costs_only_that_term() -> None:
    protected, restore = Glossary().protect("FOB and CIF", "es")
    first, second = protected.split(" and ")
    assert restore(f"{first} y franco") == "FOB y franco"
    assert restore(f"{first} y {second} QZX7XZQ") == "FOB y CIF "


def test_a_bad_glossary_file_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("verbatim = 3\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.toml"):
        Glossary.load(path)
