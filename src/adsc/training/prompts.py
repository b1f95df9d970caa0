"""Render a conversation into one string and say where the assistant answers sit in it.

Labels are decided on characters, not on separately tokenised pieces: the tokenizer runs once on
the whole string (with offsets), and a token is supervised when it overlaps an answer. This avoids
the boundary errors of tokenising turns one by one (SentencePiece merges spaces across them).
The end-of-turn token is supervised too: it is the first token after each answer (``</s>`` in
vicuna_v1, ``<|im_end|>`` in ChatML templates, ``<|eot_id|>`` in Llama-3's).
"""

from __future__ import annotations

from dataclasses import dataclass

VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)


@dataclass
class Rendered:
    text: str
    answers: list[tuple[int, int]]  # [start, end) character spans of the assistant answers


def render_vicuna_v1(rounds: list[tuple[str, str]], system: str = VICUNA_SYSTEM) -> Rendered:
    """LLaVA's conv_vicuna_v1 (sep " ", sep2 "</s>"): ``SYS USER: q ASSISTANT: a</s>USER: ...``.

    The image placeholder is already inside the first question (``<image>\\n...``).
    """
    text, answers = system + " ", []
    for question, answer in rounds:
        text += f"USER: {question} ASSISTANT: "
        answers.append((len(text), len(text) + len(answer)))
        text += answer + "</s>"
    return Rendered(text, answers)


def render_chat_template(processor, rounds: list[tuple[str, str]], image_token: str, has_image: bool) -> Rendered:
    """The processor's own chat template; the image goes first in the first user message.

    Answers are located by searching each answer's text after the previous one: a template may
    add text around a message but must reproduce the message itself verbatim.
    """
    messages = []
    for i, (question, answer) in enumerate(rounds):
        content = []
        if i == 0 and has_image:
            question = question.replace(image_token, "").lstrip("\n")
            content.append({"type": "image"})
        content.append({"type": "text", "text": question})
        messages.append({"role": "user", "content": content})
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    answers, cursor = [], 0
    for i, (question, answer) in enumerate(rounds):
        # skip past the question so an answer repeating the question's words is found in the right place
        q_text = question.replace(image_token, "").strip()
        q_at = text.find(q_text, cursor) if q_text else cursor
        cursor = q_at + len(q_text) if q_at >= 0 else cursor
        at = text.find(answer, cursor)
        if at < 0:
            raise ValueError("the chat template changed an assistant message; cannot place its labels")
        answers.append((at, at + len(answer)))
        cursor = at + len(answer)
    return Rendered(text, answers)


def supervised_mask(offsets: list[tuple[int, int]], answers: list[tuple[int, int]]) -> list[bool]:
    """Per token: does it overlap an answer, or is it the first token after one (end of turn)?"""
    mask = [False] * len(offsets)
    for start, end in answers:
        last = None
        for i, (a, b) in enumerate(offsets):
            if b > a and a < end and b > start:
                mask[i] = True
                last = i
        if last is None:  # empty answer: supervise the end-of-turn token that follows it
            last = next((i - 1 for i, (a, b) in enumerate(offsets) if b > a and a >= end), None)
        if last is not None and last + 1 < len(offsets):
            mask[last + 1] = True
    return mask
