"""MultiChallenge in audio: the audio subset's rules and count, the samples, and whole runs through the real runner
against `s2s-eval serve --engine scripted`, watched by a relay that records what the server was sent and stored,
with the judge on a loopback OpenAI-compatible server returning recorded verdicts."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from s2s_eval.datasets import load_samples, multichallenge, select
from s2s_eval.datasets.multichallenge import MAX_LIST_LINES, MAX_TURN_WORDS, MAX_USER_WORDS, exclusion_reasons
from s2s_eval.datasets.sample import Message, Sample
from s2s_eval.datasets.spec import load_eval
from s2s_eval.errors import DataError, UserError
from s2s_eval.graders import Answer, GradeContext, get_grader
from s2s_eval.graders.judge import NOT_CONFIGURED
from s2s_eval.log import read_records
from s2s_eval.runners.run import RunOptions, execute
from s2s_eval.speech.tts import Synthesizer
from tests.openai_fake import FakeOpenAI, Reply, verdict
from tests.servers import serve_process, write_script

AXES = ["INFERENCE_MEMORY", "INSTRUCTION_RETENTION", "RELIABLE_VERSION_EDITING", "SELF_COHERENCE"]
JUDGE_ENV = ("S2S_JUDGE_BASE_URL", "S2S_JUDGE_MODEL", "S2S_JUDGE_API_KEY_ENV", "S2S_JUDGE_MAX_RETRIES",
             "S2S_JUDGE_TIMEOUT_S", "S2S_JUDGE_CONCURRENCY", "S2S_JUDGE_RESPONSE_FORMAT")


@pytest.fixture(scope="module")
def spec():  # type: ignore[no-untyped-def]
    return load_eval("multichallenge")


@pytest.fixture(scope="module")
def shared_rows(spec, data_dir: Path) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    if not (data_dir / spec.source["local"]).exists():
        pytest.skip(f"shared MultiChallenge data not found at {data_dir / spec.source['local']}")
    rows, _ = multichallenge.load_rows(spec, data_dir)
    return rows


def row(qid: str = "q1", *, axis: str = "INFERENCE_MEMORY", turns: list[tuple[str, str]] | None = None,
        question: str = "Does the response mention the user's dog?", criteria: str = "YES") -> dict[str, Any]:
    turns = turns or [("user", "I have a dog called Rex."), ("assistant", "Rex is a lovely name."),
                      ("user", "What should I do this weekend?")]
    return {"QUESTION_ID": qid, "AXIS": axis, "CONVERSATION": [{"role": r, "content": c} for r, c in turns],
            "TARGET_QUESTION": question, "PASS_CRITERIA": criteria}


def with_user_turn(text: str) -> dict[str, Any]:
    return row(turns=[("user", text), ("assistant", "Sure."), ("user", "Go on, please.")])


def write_data(folder: Path, rows: list[dict[str, Any]]) -> Path:
    path = folder / "multichallenge" / "benchmark_questions.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


# --- the audio subset's rules --------------------------------------------------------------------------------

def words(n: int) -> str:
    return " ".join(["word"] * n)


@pytest.mark.parametrize(("case", "expected"), [
    (row(), []),
    (with_user_turn("Why does this fail?\n```\nprint(x\n```"), ["code_or_markup"]),
    (with_user_turn("Is <div class='a'>hello</div> valid?"), ["code_or_markup"]),
    (with_user_turn('Parse {"name": "Ann", "age": 3} for me.'), ["code_or_markup"]),
    (with_user_turn("Compare these:\n| plan | price |\n|---|---|\n| basic | 5 |"), ["table"]),
    (with_user_turn("name\tprice\tsize\nbasic\t5\tS"), ["table"]),
    (with_user_turn("Summarise https://example.org/post for me."), ["url"]),
    (with_user_turn("Is www.example.org a good shop?"), ["url"]),
    (with_user_turn("Rows:\nR1: ch 20\nR2: sc across\nR3: turn"), ["structured_text"]),
    (with_user_turn("My list:\n- eggs\n- milk\n- bread"), ["structured_text"]),
    (with_user_turn("Two things:\n1. eggs\n2. milk"), []),  # MAX_LIST_LINES lines is still speech
    (with_user_turn(words(MAX_TURN_WORDS)), []),
    (with_user_turn(words(MAX_TURN_WORDS + 1)), ["long_turn"]),
    (row(turns=[("user", words(150)), ("assistant", "Yes."), ("user", words(150)), ("assistant", "Yes."),
                ("user", words(150)), ("assistant", "Yes."), ("user", words(MAX_USER_WORDS - 450))]), []),
    (row(turns=[("user", words(150)), ("assistant", "Yes."), ("user", words(150)), ("assistant", "Yes."),
                ("user", words(150)), ("assistant", "Yes."), ("user", words(MAX_USER_WORDS - 449))]),
     ["long_conversation"]),
    (row(turns=[("user", "Write me a long story."), ("assistant", "x" * 120_000), ("user", "Shorter, please.")]),
     ["context"]),
    (row(question="Does the response use bullet points?"), ["visual_target"]),
    (row(question="Does the response avoid punctuation?"), ["visual_target"]),
    (row(question="Did the model bold the technical terms?"), ["visual_target"]),
    (row(question="Did the model limit the number of paragraphs to three?"), ["visual_target"]),
    (row(question="Does the response present the three plans in a table?"), ["visual_target"]),
    (row(question="Does the list of suitable restaurants exclude anything with a formal dress code?"), []),
    (with_user_turn(f"See https://a.example now. {words(MAX_TURN_WORDS)}"), ["url", "long_turn"]),
])
def test_each_rule_excludes_what_it_should(case: dict[str, Any], expected: list[str]) -> None:
    assert exclusion_reasons(case) == expected


def test_list_threshold_is_the_named_constant() -> None:
    lines = "\n".join(f"- item {i}" for i in range(MAX_LIST_LINES))
    assert exclusion_reasons(with_user_turn(f"Mine:\n{lines}")) == []
    assert exclusion_reasons(with_user_turn(f"Mine:\n{lines}\n- one more")) == ["structured_text"]


def test_the_audio_subset_of_the_shared_data_is_253_conversations(spec, shared_rows, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    samples, source = load_samples(spec, data_dir)
    again, _ = load_samples(spec, data_dir)
    assert [s.sample_id for s in samples] == [s.sample_id for s in again]  # deterministic, order included
    assert source["n_total"] == len(shared_rows) == 273 and len(samples) == 253
    subset = source["subset"]
    assert subset["name"] == "audio" and subset["n_kept"] == 253 and subset["n_excluded"] == 20
    assert subset["by_rule"] == {"visual_target": 15, "long_turn": 3, "long_conversation": 3, "structured_text": 2}
    assert {axis: sum(s.category == axis for s in samples) for axis in AXES} == {
        "INFERENCE_MEMORY": 112, "INSTRUCTION_RETENTION": 59, "RELIABLE_VERSION_EDITING": 35, "SELF_COHERENCE": 47}
    kept = {s.sample_id for s in samples}
    assert kept.isdisjoint(subset["excluded"]) and len(kept | set(subset["excluded"])) == 273
    assert subset["excluded"]["6745621c36ef48ba06006265"] == ["structured_text"]  # a crochet pattern, row by row
    assert subset["excluded"]["6781adc5d2b793f40a8cd766"] == ["long_turn", "long_conversation"]  # a pasted job ad
    assert subset["excluded"]["674567d0b9d767170e9698a4"] == ["visual_target"]  # "refrain from using punctuation"
    assert [s.category for s in select(samples, None, 8)] == AXES * 2  # any --limit covers every axis
    everything, source_all = load_samples(spec.model_copy(update={"subset": "all"}), data_dir)
    assert len(everything) == 273 and source_all["subset"]["excluded"] == {}
    assert source_all["content_sha256"] == source["content_sha256"] and len(source["content_sha256"]) == 64


# --- samples -------------------------------------------------------------------------------------------------

def test_a_sample_replays_the_conversation_and_speaks_the_last_user_turn(spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    turns = [("system", "You are a travel agent."), ("user", "I hate flying.\nTrains are fine."),
             ("assistant", "Noted: **no flights**."), ("user", "I live in Paris."), ("assistant", "Lovely city."),
             ("user", "Plan a trip to Rome for me")]
    data = write_data(tmp_path, [row("q-sys", axis="SELF_COHERENCE", turns=turns, criteria="no",
                                     question="Does the plan avoid flights?")])
    [sample], source = load_samples(spec, data)
    assert sample == Sample(
        sample_id="q-sys", eval="multichallenge", category="SELF_COHERENCE", prompt_text="Plan a trip to Rome for me.",
        target="NO", metadata={"target_question": "Does the plan avoid flights?", "pass_criteria": "NO", "turns": 6},
        history=(Message("system", "You are a travel agent."), Message("user", "I hate flying. Trains are fine."),
                 Message("assistant", "Noted: **no flights**."), Message("user", "I live in Paris."),
                 Message("assistant", "Lovely city.")))
    assert source["kind"] == "local" and source["n_total"] == 1 and source["subset"]["n_excluded"] == 0


@pytest.mark.parametrize(("bad", "message"), [
    (row(turns=[("user", "Hi."), ("assistant", "Hello.")]), "must end with a user turn, not 'assistant'"),
    (row(criteria="MAYBE"), "PASS_CRITERIA must be YES or NO"),
    (row(axis="HUMOUR"), "AXIS 'HUMOUR' is not one of the eval's categories"),
    (row(turns=[("user", "Hi."), ("robot", "Beep."), ("user", "Bye.")]), r"CONVERSATION\[1\] needs a role"),
    (row(question=""), "no usable TARGET_QUESTION"),
])
def test_a_malformed_row_is_one_clear_error(spec, tmp_path: Path, bad: dict[str, Any], message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match=message) as raised:
        load_samples(spec, write_data(tmp_path, [row("fine"), bad]))
    assert "row 1" in str(raised.value) and "\n" not in str(raised.value)


def test_duplicate_ids_missing_file_offline_and_unknown_subset(spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match="unique"):
        load_samples(spec, write_data(tmp_path / "dup", [row("same"), row("same")]))
    with pytest.raises(DataError, match=r"multichallenge/benchmark_questions\.jsonl"):
        load_samples(spec, tmp_path / "empty")
    with pytest.raises(UserError, match="cannot download multichallenge from .*--data-dir") as raised:
        load_samples(spec, None)  # HF offline in tests: the same one line a network failure gives
    assert "\n" not in str(raised.value)
    with pytest.raises(UserError, match="unknown subset 'short'"):
        load_samples(spec.model_copy(update={"subset": "short"}), write_data(tmp_path / "ok", [row()]))


async def test_the_grader_without_a_judge_says_why() -> None:
    sample = Sample("q1", "multichallenge", "INFERENCE_MEMORY", "Hi.", "YES", metadata={"target_question": "Q?"})
    grade = await get_grader("multichallenge").grade(sample, Answer("Hello there."), GradeContext())
    assert (grade.correct, grade.score, grade.reason) == (None, None, NOT_CONFIGURED)
    assert grade.reason.startswith("not judged: ") and grade.details == {"target_question": "Q?"}
    assert get_grader("multichallenge").episode(sample) is None


# --- whole runs ----------------------------------------------------------------------------------------------

@dataclass
class RelayedSession:
    """One session through the relay: events in both directions, and the user items the server stored."""

    sent: list[dict[str, Any]] = field(default_factory=list)  # runner -> server
    received: list[dict[str, Any]] = field(default_factory=list)  # server -> runner
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)  # item id -> the server's item, with its audio

    @property
    def sample_id(self) -> str | None:
        return next(((e.get("response") or {}).get("metadata") or {}).get("sample_id")
                    for e in self.sent if e["type"] == "response.create")

    def conversation(self) -> list[dict[str, Any]]:
        """The items the server confirmed before it started the answer, in the order it reported them."""
        items = []
        for event in self.received:
            if event["type"] == "response.created":
                break
            if event["type"] == "conversation.item.done":
                assert event["previous_item_id"] == (items[-1]["id"] if items else None)  # appended in order
                items.append(event["item"])
        return items


class Relay:
    """A WebSocket relay between the runner and `s2s-eval serve` that records every session. Whenever the server
    confirms a user audio item, the relay asks for it back (`conversation.item.retrieve`) and keeps the reply out of
    the runner's sight: the audio the server actually stored. Session n goes to `upstreams[n % len(upstreams)]`,
    or to the upstream `choose` picks (a seeded coin, say)."""

    def __init__(self, upstreams: list[str], choose: Callable[[list[str]], str] | None = None) -> None:
        self.upstreams = [u.split("/v1/")[0] for u in upstreams]
        self.choose = choose
        self.sessions: list[RelayedSession] = []
        self.url = ""

    async def __aenter__(self) -> Relay:
        self._server = await serve(self._relay, "127.0.0.1", 0, max_size=None, compression=None)
        host, port = next(iter(self._server.sockets)).getsockname()[:2]
        self.url = f"ws://{host}:{port}/v1/realtime"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    def by_sample(self) -> dict[str, list[RelayedSession]]:
        out: dict[str, list[RelayedSession]] = {}
        for session in self.sessions:
            out.setdefault(session.sample_id or "", []).append(session)
        return out

    async def _relay(self, client: ServerConnection) -> None:
        session = RelayedSession()
        upstream = (self.choose(self.upstreams) if self.choose else
                    self.upstreams[len(self.sessions) % len(self.upstreams)])
        self.sessions.append(session)
        async with connect(upstream + client.request.path, max_size=None, compression=None) as server:
            async def runner_to_server() -> None:
                with contextlib.suppress(ConnectionClosed):
                    async for frame in client:
                        session.sent.append(json.loads(frame))
                        await server.send(frame)
                await server.close()

            async def server_to_runner() -> None:
                with contextlib.suppress(ConnectionClosed):
                    async for frame in server:
                        event = json.loads(frame)
                        if event["type"] == "conversation.item.retrieved":
                            session.stored[event["item"]["id"]] = event["item"]
                            continue
                        session.received.append(event)
                        item = event.get("item") or {}
                        if event["type"] == "conversation.item.done" and item.get("role") == "user" and any(
                                p.get("type") == "input_audio" for p in item["content"]):
                            await server.send(json.dumps({"type": "conversation.item.retrieve", "item_id": item["id"]}))
                        await client.send(frame)
                await client.close()

            async with asyncio.TaskGroup() as group:
                group.create_task(runner_to_server())
                group.create_task(server_to_runner())


ROWS = [  # written for this project; each passes the audio subset except the last
    row("mc-remembers", axis="INFERENCE_MEMORY", question="Does the response suggest a dog-friendly activity?"),
    row("mc-no-criteria", axis="INSTRUCTION_RETENTION", criteria="NO",
        question="Does the response mention the price in dollars?",
        turns=[("system", "You are a concise assistant."), ("user", "Never mention prices from now on."),
               ("assistant", "Understood, no prices."), ("user", "I want a new bike."),
               ("assistant", "What kind of riding do you do?"), ("user", "Which bike should I buy for the city?")]),
    row("mc-forgets", axis="RELIABLE_VERSION_EDITING", question="Does the slogan keep the word 'fresh'?",
        turns=[("user", "Write a slogan for my bakery."), ("assistant", "Fresh bread, warm hearts."),
               ("user", "Make it shorter but keep the word fresh.")]),
    row("mc-malformed", axis="SELF_COHERENCE", question="Does the response keep June as the date?",
        turns=[("user", "The summit is in June."), ("assistant", "Got it, June."), ("user", "Any tips for it?")]),
    row("mc-has-url", axis="SELF_COHERENCE", turns=[("user", "Read https://example.org first."),
                                                     ("assistant", "Done."), ("user", "What did it say?")]),
]
ANSWERS = {  # the scripted model's spoken answer per sample, and the judge's recorded reply about it
    "mc-remembers": ("Take Rex for a long walk in the park.", verdict("YES")),
    "mc-no-criteria": ("A light hybrid bike suits city riding.", verdict("NO")),
    "mc-forgets": ("Warm bread for everyone.", verdict("NO")),
    "mc-malformed": ("Book your travel early for June.", Reply("YES, obviously.")),
}
EXPECTED = {"mc-remembers": True, "mc-no-criteria": True, "mc-forgets": False, "mc-malformed": None}


@contextlib.contextmanager
def scripted(folder: Path, answers: dict[str, str]) -> Iterator[str]:
    folder.mkdir(parents=True, exist_ok=True)
    script = write_script(folder / "script.jsonl", [{"sample_id": sid, "responses": [{"text": text}]}
                                                     for sid, text in answers.items()])
    with serve_process("--engine", "scripted", "--script", str(script), log=folder / "server.log") as url:
        yield url


def judge_replies(replies: dict[str, Reply]):  # type: ignore[no-untyped-def]
    def reply(body: dict[str, Any]) -> Reply:
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        answer = user.split("<assistant_answer>\n", 1)[1].split("\n</assistant_answer>", 1)[0]
        return replies[answer]
    return reply


@pytest.fixture
def run_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache (so no judge verdict of another test is reused) and no judge unless a test sets one."""
    monkeypatch.setenv("S2S_CACHE_DIR", str(tmp_path / "cache"))
    for name in JUDGE_ENV:
        monkeypatch.delenv(name, raising=False)
    return write_data(tmp_path / "data", ROWS)


def use_judge(monkeypatch: pytest.MonkeyPatch, fake: FakeOpenAI) -> None:
    monkeypatch.setenv("S2S_JUDGE_BASE_URL", fake.base_url)
    monkeypatch.setenv("S2S_JUDGE_MODEL", "judge-fake")
    monkeypatch.setenv("S2S_JUDGE_API_KEY_ENV", "S2S_TEST_UNSET_KEY")
    monkeypatch.setenv("S2S_JUDGE_MAX_RETRIES", "0")


def run_options(url: str, out: Path, data: Path, **overrides: Any) -> RunOptions:
    base: dict[str, Any] = dict(model="openai-compatible", eval="multichallenge", url=url, out=out, data_dir=data,
                                progress=False, concurrency=2, max_attempts=1)
    return RunOptions(**{**base, **overrides})


async def test_a_run_replays_history_and_grades_per_pass_criteria_with_pass_at_k(
        run_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_api_key: None) -> None:
    with scripted(tmp_path / "server", {sid: text for sid, (text, _) in ANSWERS.items()}) as upstream:
        async with Relay([upstream]) as relay, FakeOpenAI(
                chat=judge_replies({text: reply for text, reply in ANSWERS.values()})) as judge:
            use_judge(monkeypatch, judge)
            run_dir, summary = await execute(run_options(relay.url, tmp_path / "run", run_env, trials=2))

    # What the server was given: every prior turn as an item, in order; user turns as the audio of their text.
    synth = Synthesizer(load_eval("multichallenge").tts)
    samples = {s.sample_id: s for s in load_samples(load_eval("multichallenge"), run_env)[0]}
    sessions = relay.by_sample()
    assert set(sessions) == set(EXPECTED) and all(len(v) == 2 for v in sessions.values())  # 2 tries, none for the URL
    for sample_id, tries in sessions.items():
        sample = samples[sample_id]
        for session in tries:
            items = session.conversation()
            assert len(items) == len(sample.history) + 1
            for item, message in zip(items, [*sample.history, Message("user", sample.prompt_text)], strict=True):
                assert item["role"] == message.role
                [part] = item["content"]
                if message.role == "user":
                    assert part["type"] == "input_audio"
                    stored = base64.b64decode(session.stored[item["id"]]["content"][0]["audio"])
                    assert stored == synth.speech(message.text)  # the clip of this very turn, whole
                else:
                    assert part == {"type": "output_text" if message.role == "assistant" else "input_text",
                                    "text": message.text}
    no_criteria = [i["role"] for i in sessions["mc-no-criteria"][0].conversation()]
    assert no_criteria == ["system", "user", "assistant", "user", "assistant", "user"]

    # What was graded: pass iff the verdict equals PASS_CRITERIA; a malformed verdict is never a pass.
    records = {r["sample_id"]: r for r in read_records(run_dir)}
    assert set(records) == set(EXPECTED)
    for sample_id, expected in EXPECTED.items():
        record = records[sample_id]
        assert record["status"] == "ok" and record["correct"] is expected, record["grade"]
        assert record["response_text"] == ANSWERS[sample_id][0]
        assert record["grade"]["details"]["target_question"] == samples[sample_id].metadata["target_question"]
        assert [t["correct"] for t in record["trials"]] == [expected, expected]
        assert record["pass_at_1"] == (None if expected is None else float(expected))
    assert records["mc-no-criteria"]["grade"]["extracted"] == "NO" and records["mc-no-criteria"]["target"] == "NO"
    assert records["mc-forgets"]["grade"]["reason"] == "judge answered NO: fail"
    assert records["mc-malformed"]["grade"]["reason"].startswith("not judged: malformed judge reply")
    assert judge.count("/chat/completions") == 5  # 3 verdicts asked once (then cached), the malformed one twice

    assert summary["accuracy"] == pytest.approx(2 / 3)
    assert {axis: summary["by_category"][axis]["accuracy"] for axis in AXES} == {
        "INFERENCE_MEMORY": 1.0, "INSTRUCTION_RETENTION": 1.0, "RELIABLE_VERSION_EDITING": 0.0, "SELF_COHERENCE": None}
    assert summary["metrics"]["pass_at_1"] == {"mean": pytest.approx(2 / 3, abs=1e-6), "n": 3}
    spec_json = json.loads((run_dir / "spec.json").read_text())
    assert spec_json["judge"]["model"] == "judge-fake"
    assert spec_json["dataset"]["subset"]["excluded"] == {"mc-has-url": ["url"]}


async def test_pass_at_k_passes_when_a_later_try_does(run_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      no_api_key: None) -> None:
    wrong, right = "Warm bread for everyone.", "Fresh bread, small words."
    with (scripted(tmp_path / "a", {"mc-forgets": wrong}) as first,
          scripted(tmp_path / "b", {"mc-forgets": right}) as second):
        async with Relay([first, second]) as relay, FakeOpenAI(
                chat=judge_replies({wrong: verdict("NO"), right: verdict("YES")})) as judge:
            use_judge(monkeypatch, judge)
            run_dir, summary = await execute(run_options(relay.url, tmp_path / "run", run_env, trials=2,
                                                         ids=["mc-forgets"]))
    [record] = read_records(run_dir)
    assert [(t["response_text"], t["correct"]) for t in record["trials"]] == [(wrong, False), (right, True)]
    assert record["correct"] is True and record["pass_at_1"] == 0.5
    assert summary["accuracy"] == 1.0 and summary["metrics"]["pass_at_1"] == {"mean": 0.5, "n": 1}


async def test_without_a_judge_every_answer_is_ungraded_with_the_reason(run_env: Path, tmp_path: Path,
                                                                        no_api_key: None) -> None:
    with scripted(tmp_path / "server", {sid: text for sid, (text, _) in ANSWERS.items()}) as upstream:
        run_dir, summary = await execute(run_options(upstream, tmp_path / "run", run_env, trials=2))
    records = list(read_records(run_dir))
    assert len(records) == 4 and all(r["status"] == "ok" and r["response_text"] for r in records)
    assert all(r["correct"] is None and r["grade"]["reason"] == NOT_CONFIGURED for r in records)
    assert all(r["pass_at_1"] is None and [t["reason"] for t in r["trials"]] == [NOT_CONFIGURED] * 2 for r in records)
    assert summary["accuracy"] is None and summary["grade_reasons"] == {NOT_CONFIGURED: 4}
    assert json.loads((run_dir / "spec.json").read_text())["judge"] == {"configured": False, "reason": NOT_CONFIGURED}

