"""Apertium: offline rule-based translation through one long-lived pipeline per language pair.

A pair's pipeline is what ``apertium -z -u -f none <mode>`` runs, started on the pair's first
request and kept, fed one request at a time: the text, a newline and a NUL. Every stage runs in
null-flush mode, so the answer comes back at once, ended by a NUL. With no deformatter
(``-f none``) the text is escaped here, as ``apertium-destxt`` would escape it.

The ``apertium`` script itself cannot serve that way: in Debian's 3.8.3 its gawk wrappers read
ahead past a NUL, so an answer only came out when the next request (or EOF) went in. We run the
mode's pipeline as ``apertium-wblank-mode -z`` prints it: the script's, without those wrappers.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from asyncio.subprocess import PIPE, Process
from pathlib import Path

from translate.languages import from_apertium, to_apertium
from translate.provider import FailureKind, LanguagePair, Translation, TranslationError

NAME = "apertium"
WBLANK_MODE = "apertium-wblank-mode"  # in Debian's apertium package, as the apertium script is
NOT_INSTALLED = "Apertium is not installed (Debian: apt-get install apertium apertium-eng-spa)"
DEFAULT_DATA_DIR = Path("/usr/share/apertium")  # what the apertium script reads without -d
# The stream format's special characters: apertium-destxt escapes these, as we do.
STREAM_SPECIAL = frozenset("\\[]^$/<>@{}")
# A chat message or an exhibitor's description; beyond that, one request would hold the pair's
# only pipe for seconds.
MAX_REQUEST_BYTES = 64 * 1024
# An answer is read whole; escapes and Spanish make it longer than its request.
READ_LIMIT = 1024 * 1024
STOP_SECONDS = 5.0
STDERR_TAIL_BYTES = 2000
# The pipeline's arguments, as the apertium script passes them: -u's "-n" makes the generator
# leave unknown words unmarked (no '*', so placeholders come back as they went); no tagger option.
GENERATOR_OPTION = "-n"
TAGGER_OPTION = ""
# The bash that runs a pipeline (in its own process group) traps SIGTERM, so that signalled with
# the group it outlives the stages and reaps them (no orphan is left to an init that may not
# reap it); ends every stage when one ends (SIGCHLD), so that a crashed stage closes stdout at
# once and the request waiting on it fails rather than hangs; and runs the pipeline in the
# background, given its stdin (a background job's is /dev/null otherwise), to take that signal.
PIPELINE_HEAD = "trap : TERM\ntrap 'kill -TERM 0' CHLD\nexec 3<&0\n<&3 "
PIPELINE_TAIL = " &\nuntil wait; do :; done\n"


def encode_request(text: str) -> bytes:
    """``text`` as one request in Apertium's stream format."""
    parts: list[str] = []
    for char in text:
        if char in STREAM_SPECIAL:
            parts.append("\\" + char)
        elif char == "~":
            # Post-generation takes a '~', escaped or not, for its own mark and drops it; inside
            # a superblank it passes untouched.
            parts.append("[~]")
        else:
            parts.append(char)
    # The newline ends the last sentence: without it the tagger loses a final full stop.
    return ("".join(parts) + "\n\0").encode()


def decode_answer(answer: bytes) -> str:
    """The text of one answer (its NUL already cut): unescaped, our superblanks unwrapped, and
    without the newline the request ended with. Raises UnicodeDecodeError."""
    chars: list[str] = []
    escaped = False
    for char in answer.decode():
        if escaped:
            chars.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char not in "[]":  # every bracket of the text was escaped: these are ours
            chars.append(char)
    text = "".join(chars)
    return text.removesuffix("\n")


class _RunningPipeline:
    """One started pipeline: bash leading its own process group of stages, and its stderr."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.abandoned = False  # an answer was left half-read: never ask this one again
        self._stderr_tail = bytearray()
        self._drain = asyncio.create_task(self._drain_stderr())

    @property
    def alive(self) -> bool:
        return self.process.returncode is None and not self.abandoned

    def errors(self) -> str:
        """What the stages last said on stderr, for a failure's message."""
        said = self._stderr_tail.decode(errors="replace").strip()
        return f": {said}" if said else ""

    def abandon(self) -> None:
        """Stop it now, without waiting (the caller may be cancelled); stop() reaps it."""
        self.abandoned = True
        self._signal(signal.SIGTERM)

    async def stop(self) -> None:
        self.abandoned = True
        # The group even when bash is gone: a bash killed outright leaves its stages running.
        self._signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_SECONDS):
                await self.process.wait()
        except TimeoutError:
            self._signal(signal.SIGKILL)
            await self.process.wait()
        await self._drain

    def _signal(self, signum: signal.Signals) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    async def _drain_stderr(self) -> None:
        # Read to the end: an unread stderr pipe fills up and stalls the stage writing to it.
        assert self.process.stderr is not None
        while chunk := await self.process.stderr.read(4096):
            self._stderr_tail += chunk
            del self._stderr_tail[:-STDERR_TAIL_BYTES]


class _PairPipeline:
    """A pair's pipeline over its life: started lazily, one request in flight, and restarted
    when it died or an answer was abandoned half-read."""

    def __init__(self, mode: str, pipeline: str) -> None:
        self.mode = mode
        self.starts = 0
        self._script = PIPELINE_HEAD + pipeline + PIPELINE_TAIL
        self._lock = asyncio.Lock()
        self._running: _RunningPipeline | None = None
        self._starting: asyncio.Task[_RunningPipeline] | None = None
        self._closed = False

    @property
    def process_id(self) -> int | None:
        running = self._running
        return running.process.pid if running is not None and running.alive else None

    async def ask(self, request: bytes) -> bytes:
        """The answer to one request (without its NUL); raises TranslationError (UNAVAILABLE)."""
        async with self._lock:
            running = await self._ready()
            assert running.process.stdin is not None and running.process.stdout is not None
            try:
                # No drain(): the answer is read while the transport writes the rest, so a text
                # longer than the pipes' buffers cannot deadlock against its own answer.
                running.process.stdin.write(request)
                answer = await running.process.stdout.readuntil(b"\0")
                if not answer.endswith(b"\n\0"):
                    # Every answer keeps the request's newline: this NUL is one that the stages
                    # after a dead one flushed as they ended.
                    raise ConnectionError(f"a broken answer {answer[-40:]!r}")
            except Exception as error:
                running.abandon()
                raise TranslationError(
                    FailureKind.UNAVAILABLE,
                    f"apertium {self.mode} stopped answering ({error!r}){running.errors()}",
                ) from error
            except BaseException:
                # Cancelled mid-answer (the caller's timeout): the rest of this answer would be
                # read as the next request's.
                running.abandon()
                raise
            return answer[:-1]

    async def close(self) -> None:
        self._closed = True
        starting, self._starting = self._starting, None
        if starting is not None:
            starting.cancel()
            await asyncio.wait([starting])
            if not starting.cancelled() and starting.exception() is None:
                await starting.result().stop()
        running, self._running = self._running, None
        if running is not None:
            await running.stop()

    async def _ready(self) -> _RunningPipeline:
        if self._closed:
            raise TranslationError(FailureKind.UNAVAILABLE, "apertium is closed")
        if self._running is not None:
            if self._running.alive:
                return self._running
            dead, self._running = self._running, None
            await dead.stop()
        if self._starting is None:
            self._starting = asyncio.create_task(self._start())
        starting = self._starting
        try:
            # Shielded: a caller that times out while the dictionaries load (about a second)
            # leaves them loading for the next request instead of starting over each time.
            running = await asyncio.shield(starting)
        except asyncio.CancelledError:
            caller = asyncio.current_task()
            if starting.cancelled() and caller is not None and not caller.cancelling():
                # close() cancelled the start, not our caller's deadline.
                raise TranslationError(FailureKind.UNAVAILABLE, "apertium is closed") from None
            raise
        finally:
            if starting.done():
                self._starting = None
                if not starting.cancelled() and starting.exception() is None:
                    self._running = starting.result()
        return running

    async def _start(self) -> _RunningPipeline:
        try:
            process = await asyncio.create_subprocess_exec(
                "bash", "-c", self._script, NAME, GENERATOR_OPTION, TAGGER_OPTION,
                stdin=PIPE, stdout=PIPE, stderr=PIPE, limit=READ_LIMIT, start_new_session=True,
            )
        except OSError as error:
            raise TranslationError(
                FailureKind.UNAVAILABLE, f"apertium {self.mode} did not start: {error}"
            ) from error
        self.starts += 1
        running = _RunningPipeline(process)
        assert process.stdin is not None and process.stdout is not None
        try:
            # An empty line through every stage: each answers once its dictionaries are loaded.
            process.stdin.write(b"\n\0")
            await process.stdout.readuntil(b"\0")
        except BaseException as error:
            await running.stop()
            if isinstance(error, Exception):
                raise TranslationError(
                    FailureKind.UNAVAILABLE,
                    f"apertium {self.mode} did not start ({error!r}){running.errors()}",
                ) from error
            raise
        return running


class ApertiumTranslator:
    """Apertium's installed pairs whose both languages have ISO 639-1 codes; it cannot detect a
    language. Each pair runs one pipeline, started on the pair's first request and kept; a
    pipeline found dead is restarted for the request that found it, and the request it dies
    under fails (UNAVAILABLE, not retried: that text may be what killed it)."""

    def __init__(self, data_dir: Path = DEFAULT_DATA_DIR) -> None:
        self._data_dir = data_dir
        self._pipelines: dict[LanguagePair, _PairPipeline] = {}

    @property
    def name(self) -> str:
        return NAME

    @property
    def pairs(self) -> frozenset[LanguagePair]:
        return frozenset(self._pipelines)

    @property
    def detects(self) -> bool:
        return False

    @property
    def process_starts(self) -> int:
        """How many pipelines it started (a restart counts), since start()."""
        return sum(pipeline.starts for pipeline in self._pipelines.values())

    def process_id(self, pair: LanguagePair) -> int | None:
        """The pid of the pair's running pipeline (bash, leading its process group), if any."""
        pipeline = self._pipelines.get(pair)
        return pipeline.process_id if pipeline is not None else None

    async def start(self) -> None:
        if self._pipelines:
            return
        if shutil.which(WBLANK_MODE) is None:
            raise TranslationError(FailureKind.UNAVAILABLE, NOT_INSTALLED)
        modes = self._modes()
        pipelines: dict[LanguagePair, _PairPipeline] = {}
        for pair, mode in sorted(modes.items(), key=lambda item: item[1]):
            pipelines[pair] = _PairPipeline(mode.stem, await self._pipeline(mode))
        self._pipelines = pipelines

    async def translate(self, text: str, source: str | None, target: str) -> Translation:
        if not self._pipelines:
            raise TranslationError(FailureKind.UNAVAILABLE, "apertium is not started")
        if source is None:
            raise TranslationError(
                FailureKind.UNSUPPORTED, "apertium cannot detect the language: give the source"
            )
        pipeline = self._pipelines.get(LanguagePair(source, target))
        if pipeline is None:
            raise TranslationError(FailureKind.UNSUPPORTED, f"apertium has no {source}-{target}")
        if "\0" in text:
            raise TranslationError(FailureKind.REJECTED, "a NUL in the text (it ends a request)")
        if not text.strip():
            raise TranslationError(FailureKind.REJECTED, "nothing to translate")
        request = encode_request(text)
        if len(request) > MAX_REQUEST_BYTES:
            raise TranslationError(
                FailureKind.REJECTED, f"{len(request)} bytes is over {MAX_REQUEST_BYTES}"
            )
        answer = await pipeline.ask(request)
        try:
            translated = decode_answer(answer)
        except UnicodeDecodeError as error:
            raise TranslationError(
                FailureKind.UNAVAILABLE, f"apertium {pipeline.mode} answered in bad UTF-8"
            ) from error
        if not translated.strip():
            raise TranslationError(FailureKind.REJECTED, f"apertium {pipeline.mode}: no answer")
        # The ends keep the text's own white space: a dropped subject pronoun ("We deliver" →
        # "Entregamos") leaves Apertium's space before the first word.
        leading = text[: len(text) - len(text.lstrip())]
        trailing = text[len(text.rstrip()) :]
        return Translation(
            text=leading + translated.strip() + trailing, source=source, target=target,
            provider=NAME,
        )

    async def close(self) -> None:
        pipelines, self._pipelines = self._pipelines, {}
        await asyncio.gather(*(pipeline.close() for pipeline in pipelines.values()))

    def _modes(self) -> dict[LanguagePair, Path]:
        """Each usable pair's mode file: the plain one (``spa-eng``) over a variant's
        (``spa-eng_US``), which only serves a pair that has no plain mode."""
        modes_dir = self._data_dir / "modes"
        modes: dict[LanguagePair, Path] = {}
        for mode in sorted(modes_dir.glob("*.mode")):
            codes = mode.stem.split("-")
            if len(codes) != 2:  # a debugging mode such as eng-spa-tagger
                continue
            source, target = (from_apertium(code) for code in codes)
            if source is None or target is None or source == target:
                continue
            pair = LanguagePair(source, target)
            plain = f"{to_apertium(source)}-{to_apertium(target)}"
            if pair not in modes or mode.stem == plain:
                modes[pair] = mode
        if not modes:
            raise TranslationError(
                FailureKind.UNAVAILABLE,
                f"no Apertium pair in {modes_dir} (Debian: apt-get install apertium-eng-spa)",
            )
        return modes

    @staticmethod
    async def _pipeline(mode: Path) -> str:
        """The mode's pipeline with every stage in null-flush mode, as a shell command."""
        try:
            process = await asyncio.create_subprocess_exec(
                WBLANK_MODE, "-z", str(mode), stdout=PIPE, stderr=PIPE
            )
        except OSError as error:
            raise TranslationError(FailureKind.UNAVAILABLE, NOT_INSTALLED) from error
        script, errors = await process.communicate()
        if process.returncode != 0 or b"|" not in script:
            raise TranslationError(
                FailureKind.UNAVAILABLE,
                f"{WBLANK_MODE} {mode.stem}: {errors.decode(errors='replace').strip()}",
            )
        return script.decode().strip()
