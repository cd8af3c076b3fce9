"""ApertiumTranslator against the real Apertium (Debian's apertium and apertium-eng-spa, which
scripts/ensure-system-deps.sh installs): translations, one long-lived pipe per pair, its
framing under concurrency and cancellation, restarts, and shutting down."""

from __future__ import annotations

import asyncio
import os
import signal
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from translate.apertium import ApertiumTranslator
from translate.provider import (
    FailureKind,
    LanguagePair,
    Translation,
    TranslationError,
    Translator,
)

EN_ES = LanguagePair("en", "es")
ES_EN = LanguagePair("es", "en")
PRICE = "The price of the machine is good."
PRODUCTS = ("machines", "robots", "pumps", "tools", "cars")
DEADLINE = 30.0  # for what must not hang; a dictionary load takes a second or two here


def stand_sentence(number: int) -> str:
    return f"Stand {number} sells {PRODUCTS[number % len(PRODUCTS)]} to the food industry."


# Long enough (about 20 kB) that Apertium takes a few hundred milliseconds over it.
LONG_TEXT = " ".join(stand_sentence(number) for number in range(400))


async def start_apertium() -> ApertiumTranslator:
    translator = ApertiumTranslator()
    try:
        await translator.start()
    except TranslationError as error:
        pytest.fail(f"{error} — scripts/ensure-system-deps.sh installs it")
    return translator


@pytest.fixture
async def apertium() -> AsyncIterator[ApertiumTranslator]:
    translator = await start_apertium()
    yield translator
    await translator.close()


async def session_processes(session: int) -> list[str]:
    """The commands of the processes (zombies too) in a session: a pipeline's bash and stages."""
    ps = await asyncio.create_subprocess_exec(
        "ps", "-o", "pid=,comm=", "-s", str(session), stdout=PIPE
    )
    listing, _ = await ps.communicate()
    return [line.split(None, 1)[1] for line in listing.decode().splitlines() if line.strip()]


async def stage_pid(session: int, command_line: str) -> int:
    ps = await asyncio.create_subprocess_exec(
        "ps", "-o", "pid=,args=", "-s", str(session), stdout=PIPE
    )
    listing, _ = await ps.communicate()
    return next(int(line.split(None, 1)[0]) for line in listing.decode().splitlines()
                if line.split(None, 1)[1].startswith(command_line))


async def until_dead(translator: ApertiumTranslator, pair: LanguagePair) -> None:
    async with asyncio.timeout(DEADLINE):
        while translator.process_id(pair) is not None:
            await asyncio.sleep(0.01)


async def test_start_finds_english_spanish_both_ways_and_starts_no_pipe_yet(
    apertium: ApertiumTranslator,
) -> None:
    translator: Translator = apertium
    assert {EN_ES, ES_EN} <= translator.pairs
    assert translator.name == "apertium" and translator.detects is False
    assert apertium.process_starts == 0 and apertium.process_id(EN_ES) is None


async def test_english_to_spanish(apertium: ApertiumTranslator) -> None:
    translation = await apertium.translate(PRICE, "en", "es")
    assert "precio" in translation.text and "máquina" in translation.text
    assert translation == Translation(translation.text, "en", "es", "apertium")
    stand = await apertium.translate("Our stand is in hall seven.", "en", "es")
    assert "estand" in stand.text and "siete" in stand.text


async def test_spanish_to_english(apertium: ApertiumTranslator) -> None:
    translation = await apertium.translate("El precio de la máquina es bueno.", "es", "en")
    assert "price" in translation.text and "machine" in translation.text
    assert translation.source == "es" and translation.target == "en"
    stand = await apertium.translate("Nuestro estand está en la sala siete.", "es", "en")
    assert "stand" in stand.text and "seven" in stand.text


async def test_one_pipe_answers_many_sequential_requests(apertium: ApertiumTranslator) -> None:
    pid = None
    for number in range(100, 140):
        translation = await apertium.translate(stand_sentence(number), "en", "es")
        assert f"Estand {number} vende" in translation.text
        pid = pid or apertium.process_id(EN_ES)
        assert apertium.process_id(EN_ES) == pid
    assert pid is not None and apertium.process_starts == 1


async def test_concurrent_requests_on_one_pipe_each_get_their_own_answer(
    apertium: ApertiumTranslator,
) -> None:
    sentences = [stand_sentence(number) for number in range(200, 240)]
    one_by_one = {sentence: (await apertium.translate(sentence, "en", "es")).text
                  for sentence in sentences}
    pid = apertium.process_id(EN_ES)
    asked = sentences[::-1] + sentences[::2]
    answers = await asyncio.gather(*(apertium.translate(sentence, "en", "es")
                                     for sentence in asked))
    assert [answer.text for answer in answers] == [one_by_one[sentence] for sentence in asked]
    assert apertium.process_id(EN_ES) == pid and apertium.process_starts == 1


async def test_placeholders_pass_untouched(apertium: ApertiumTranslator) -> None:
    translation = await apertium.translate(
        "Please meet QZX0XZQ at stand QZX1XZQ tomorrow.", "en", "es"
    )
    assert "QZX0XZQ" in translation.text and "QZX1XZQ" in translation.text
    assert "*" not in translation.text  # unknown words are not marked
    back = await apertium.translate("Nuestro estand QZX2XZQ está en la sala siete.", "es", "en")
    assert "QZX2XZQ" in back.text


async def test_stream_format_characters_come_back_as_written(
    apertium: ApertiumTranslator,
) -> None:
    # Each means something to Apertium's stream format (or, '~', to its post-generation).
    translation = await apertium.translate(
        "Write to info@fair.com, see fair.com/hall[2] <now> ~ok~ a\\b {x} ^y$", "en", "es"
    )
    for written in ("info@fair.com", "fair.com/hall[2]", "<", ">", "\\b", "{x}", "^y$"):
        assert written in translation.text
    assert translation.text.count("~") == 2
    # An unbalanced bracket would open a superblank that swallowed the NUL after it.
    assert "[" in (await apertium.translate("The hall [east is open.", "en", "es")).text
    assert "precio" in (await apertium.translate(PRICE, "en", "es")).text


async def test_white_space_at_the_ends_is_the_texts(apertium: ApertiumTranslator) -> None:
    dropped_pronoun = await apertium.translate("We deliver the machines.", "en", "es")
    assert dropped_pronoun.text.startswith("Entregamos")
    lines = await apertium.translate("  Line one.\nLine two.\n", "en", "es")
    assert lines.text.startswith("  L") and lines.text.endswith(".\n")
    assert lines.text.count("\n") == 2


async def test_unsupported_pairs_and_no_source(apertium: ApertiumTranslator) -> None:
    for source, target in (("en", "zh"), ("es", "fr"), ("en", "en"), (None, "es")):
        with pytest.raises(TranslationError) as raised:
            await apertium.translate(PRICE, source, target)
        assert raised.value.kind is FailureKind.UNSUPPORTED
    assert apertium.process_starts == 0


async def test_nul_blank_and_oversized_texts_are_rejected(apertium: ApertiumTranslator) -> None:
    for text in ("The price\0 is good.", "", " \n ", "machine " * 10_000):
        with pytest.raises(TranslationError) as raised:
            await apertium.translate(text, "en", "es")
        assert raised.value.kind is FailureKind.REJECTED
    assert apertium.process_starts == 0


async def test_a_timeout_mid_answer_restarts_the_pipe_and_the_next_answer_is_right(
    apertium: ApertiumTranslator,
) -> None:
    expected = (await apertium.translate(PRICE, "en", "es")).text
    first = apertium.process_id(EN_ES)
    assert first is not None
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await apertium.translate(LONG_TEXT, "en", "es")
    # Without the restart this would read the rest of the long text's answer.
    assert (await apertium.translate(PRICE, "en", "es")).text == expected
    assert apertium.process_starts == 2 and apertium.process_id(EN_ES) not in (None, first)
    assert await session_processes(first) == []


async def test_a_timeout_while_the_pipe_starts_leaves_it_starting_for_the_next_request(
    apertium: ApertiumTranslator,
) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await apertium.translate(PRICE, "en", "es")
    assert "precio" in (await apertium.translate(PRICE, "en", "es")).text
    assert apertium.process_starts == 1


async def test_a_pipe_killed_between_requests_is_restarted_for_the_next(
    apertium: ApertiumTranslator,
) -> None:
    expected = (await apertium.translate(PRICE, "en", "es")).text
    first = apertium.process_id(EN_ES)
    assert first is not None
    os.killpg(first, signal.SIGTERM)
    await until_dead(apertium, EN_ES)
    assert (await apertium.translate(PRICE, "en", "es")).text == expected
    assert apertium.process_starts == 2 and apertium.process_id(EN_ES) not in (None, first)
    assert await session_processes(first) == []


# A stage in the middle (the stages after it flush a NUL as they end) and the last one (after
# which nothing flushes: only ending the whole pipeline closes stdout).
@pytest.mark.parametrize("stage", ["lrx-proc", "lt-proc -z -p"])
async def test_a_stage_crashing_mid_answer_fails_that_request_then_the_next_recovers(
    apertium: ApertiumTranslator, stage: str
) -> None:
    expected = (await apertium.translate(PRICE, "en", "es")).text
    first = apertium.process_id(EN_ES)
    assert first is not None
    async with asyncio.timeout(DEADLINE):  # a dead stage must not leave the request hanging
        long_request = asyncio.create_task(apertium.translate(LONG_TEXT, "en", "es"))
        await asyncio.sleep(0.05)
        os.kill(await stage_pid(first, stage), signal.SIGKILL)
        with pytest.raises(TranslationError) as raised:
            await long_request
    assert raised.value.kind is FailureKind.UNAVAILABLE
    assert (await apertium.translate(PRICE, "en", "es")).text == expected
    assert apertium.process_starts == 2
    assert await session_processes(first) == []


async def test_close_ends_every_pipe_and_leaves_no_process() -> None:
    apertium = await start_apertium()
    await apertium.translate(PRICE, "en", "es")
    await apertium.translate("El precio de la máquina es bueno.", "es", "en")
    sessions = [apertium.process_id(EN_ES), apertium.process_id(ES_EN)]
    assert None not in sessions
    assert all([await session_processes(session) for session in sessions if session])
    await apertium.close()
    for session in sessions:
        assert session is not None and await session_processes(session) == []
    assert apertium.pairs == frozenset()
    with pytest.raises(TranslationError) as raised:
        await apertium.translate(PRICE, "en", "es")
    assert raised.value.kind is FailureKind.UNAVAILABLE


async def test_close_fails_the_requests_in_flight_as_unavailable() -> None:
    apertium = await start_apertium()
    await apertium.translate(PRICE, "en", "es")
    answering = asyncio.create_task(apertium.translate(LONG_TEXT, "en", "es"))
    starting = asyncio.create_task(apertium.translate("El precio es bueno.", "es", "en"))
    await asyncio.sleep(0.05)
    await apertium.close()
    for request in (answering, starting):
        with pytest.raises(TranslationError) as raised:
            await request
        assert raised.value.kind is FailureKind.UNAVAILABLE


async def test_not_started_and_not_installed_are_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(TranslationError) as raised:
        await ApertiumTranslator().translate(PRICE, "en", "es")
    assert raised.value.kind is FailureKind.UNAVAILABLE
    with pytest.raises(TranslationError) as raised:
        await ApertiumTranslator(tmp_path).start()  # no modes there
    assert raised.value.kind is FailureKind.UNAVAILABLE and "no Apertium pair" in str(raised.value)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TranslationError) as raised:
        await ApertiumTranslator().start()
    assert raised.value.kind is FailureKind.UNAVAILABLE and "not installed" in str(raised.value)
