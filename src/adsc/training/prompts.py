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


# Private-use characters no template writes: each answer is first rendered as a marker, so its
# place comes from the template itself, not from searching the text for the answer's words.
_MARK = "\ue000{}\ue001"
_REWRITTEN = ("the chat template changed an assistant message (it must write each answer verbatim); cannot place its "
              "labels: use --template vicuna_v1 or a template that keeps messages as they are")


def render_chat_template(processor, rounds: list[tuple[str, str]], image_token: str, has_image: bool) -> Rendered:
    """The processor's own chat template; the image goes first in the first user message.

    Answers are placed by rendering the conversation once with a marker in place of each answer
    and once as it is. Searching the rendered text for the answer instead (as this did before)
    finds a short answer inside the template's own words: the answer "A" inside llava's
    "ASSISTANT:", so multiple-choice records answered "A" were trained on the wrong tokens
    (docs/testbed.md, "The answer A was never trained"). A template may add text around a
    message but must reproduce the message itself verbatim.
    """
    def render(answers: list[str]) -> str:
        messages = []
        for i, ((question, _), answer) in enumerate(zip(rounds, answers)):
            content = []
            if i == 0 and has_image:
                question = question.replace(image_token, "").lstrip("\n")
                content.append({"type": "image"})
            content.append({"type": "text", "text": question})
            messages.append({"role": "user", "content": content})
            messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
        return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)

    marked = render([_MARK.format(i) for i in range(len(rounds))])
    text, answers, rest = "", [], marked
    for i, (_, answer) in enumerate(rounds):
        before, found, rest = rest.partition(_MARK.format(i))
        if not found:
            raise ValueError(_REWRITTEN)
        text += before
        answers.append((len(text), len(text) + len(answer)))
        text += answer
    text += rest
    if text != render([answer for _, answer in rounds]):
        raise ValueError(_REWRITTEN)
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
