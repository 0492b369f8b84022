"""Differences written by any OpenAI-compatible chat-completions server, as in the paper.

The paper asked Llama-2-13B-chat; vLLM, llama.cpp's server and Ollama all serve such models
behind `POST {base_url}/chat/completions`. Each pair is one request whose user message is the
paper's question (`PAPER_PROMPT`); the answer is returned as written (it should start with
"A:"; `training.text_filter` cleans it).

Requests run on a bounded thread pool (`concurrency` in flight; results in input order).
Connect errors, timeouts, 429 and 5xx are retried with exponential backoff and jitter, a
Retry-After header taking precedence. A pair whose retries run out gets None and its reason
is counted in `failures` (and listed per pair in `last_reasons`), so one bad stretch of the
server does not end a long run; a rerun of `build_pairs` retries exactly those pairs. Any other
4xx (bad model name, bad key, bad request) would fail every pair alike, so it raises
`DescriberRequestError` at once.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx

from training.describers.base import PAPER_PROMPT, DescriberOptions, PairInput
from training.text_filter import PAPER_MIN_CHARS

BODY_SNIPPET_CHARS = 300


class DescriberRequestError(RuntimeError):
    """The server refused a request in a way a retry cannot fix (a 4xx other than 429)."""


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class OpenAIDescriber:
    """Chat-completions client for difference texts.

    base_url: the API root, e.g. "http://localhost:8000/v1" (vLLM) or "http://localhost:11434/v1"
        (Ollama); requests go to `{base_url}/chat/completions`.
    model: the served model's name, e.g. "meta-llama/Llama-2-13b-chat-hf".
    api_key: sent as `Authorization: Bearer <api_key>` when given.
    concurrency: requests in flight at once.
    timeout: seconds for each of connect, read, write and pool wait.
    max_retries: retries after the first attempt (so up to max_retries + 1 requests per pair).
    backoff, max_backoff: the n-th retry waits ~backoff * 2**n seconds (jittered 50-100%),
        at most max_backoff; a Retry-After header overrides it (capped at max_retry_after).
    system_prompt: an optional system message before the paper's question (the paper had none).
    """

    name = "openai"
    min_chars = PAPER_MIN_CHARS

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 60,
        max_retries: int = 4,
        temperature: float = 0.7,
        max_tokens: int = 96,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        max_retry_after: float = 120.0,
        system_prompt: str | None = None,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL such as http://localhost:8000/v1, got {base_url!r}")
        if concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise ValueError(
                f"need concurrency >= 1, max_retries >= 0 and timeout > 0; got {concurrency}, {max_retries}, {timeout}"
            )
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.system_prompt = system_prompt
        self.failures: Counter[str] = Counter()  # reason -> pairs left without an answer, over all calls
        self.last_reasons: list[str] = []  # per pair of the last call: "" or why it got None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        self._rng = random.Random()
        self._lock = threading.Lock()

    @classmethod
    def from_options(cls, options: DescriberOptions) -> OpenAIDescriber:
        """The server named by `base_url` and `llm_model`, both required."""
        if not options.base_url or not options.llm_model:
            raise ValueError("the openai describer needs a server: base_url and llm_model (--base-url, --llm-model)")
        return cls(options.base_url, options.llm_model, api_key=options.api_key, concurrency=options.concurrency)

    # -- public --------------------------------------------------------------------------------

    def describe(self, pairs: Sequence[PairInput]) -> list[str | None]:
        """One answer per pair, in input order; None where the server never answered usably."""
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="openai-describer") as pool:
            futures = [pool.submit(self._describe_one, pair) for pair in pairs]
            try:
                results = [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        self.last_reasons = [reason for _, reason in results]
        self.failures.update(reason for reason in self.last_reasons if reason)
        return [text for text, _ in results]

    def messages(self, pair: PairInput) -> list[dict[str, str]]:
        first, second = pair.captions
        question = {"role": "user", "content": PAPER_PROMPT.format(first=first, second=second)}
        if self.system_prompt:
            return [{"role": "system", "content": self.system_prompt}, question]
        return [question]

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIDescriber:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- one pair ------------------------------------------------------------------------------

    def _describe_one(self, pair: PairInput) -> tuple[str | None, str]:
        """(answer, "") or (None, reason) after the retries ran out."""
        payload = {
            "model": self.model,
            "messages": self.messages(pair),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        for attempt in range(self.max_retries + 1):
            try:
                return self._request(payload)
            except _Retryable as error:
                if attempt == self.max_retries:
                    return None, error.reason
                time.sleep(self._delay(attempt, error.retry_after))
        raise AssertionError("unreachable")

    def _request(self, payload: dict) -> tuple[str | None, str]:
        try:
            response = self._client.post(self.url, json=payload)
        except httpx.TimeoutException as error:
            raise _Retryable("timeout") from error
        except httpx.ConnectError as error:
            raise _Retryable("connect error") from error
        except httpx.TransportError as error:  # connection dropped mid-answer and the like
            raise _Retryable("transport error") from error
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}", _retry_after(response.headers.get("retry-after")))
        if status >= 400:
            raise DescriberRequestError(
                f"{self.url} answered HTTP {status} (not retried; check model name, key and request): "
                f"{' '.join(response.text[:BODY_SNIPPET_CHARS].split())}"
            )
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return None, "malformed response"
        if not isinstance(content, str) or not content.strip():
            return None, "empty answer"
        return content.strip(), ""

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        ceiling = min(self.max_backoff, self.backoff * 2**attempt)
        with self._lock:
            return ceiling * (0.5 + 0.5 * self._rng.random())


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())
