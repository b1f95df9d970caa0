"""The library's prompt rules on the testbed's own processor (a chat template that does not write
the BOS, as llava-hf's): training prompts are evaluation prompts token for token, and answers are
labelled where the template puts them. Here rather than in tests/training: the library's suite does
not need the testbed."""

import pytest
from PIL import Image

from adsc.training.data import IGNORE, Encoder
from adsc.training.records import parse_record
from adsc_testbed.facts import CHECKPOINT


@pytest.mark.parametrize("answer", ["Yes", "A"])
def test_training_prompt_is_token_for_token_the_evaluation_prompt(tmp_path, answer):
    """A model must be trained on the prompt it is evaluated on. With a chat template that does
    not write the BOS (llava-hf's, the testbed's) training once tokenized without it while
    evaluation's processor call added it; fine-tunes of the testbed then answered GQA questions
    with ScienceQA letters (docs/testbed.md). The answer "A" was once placed inside the template's
    "ASSISTANT:" and never trained (the same page)."""
    from transformers import AutoProcessor

    from adsc.evaluation.generation import Generator
    from adsc_testbed.model import build_model

    processor = AutoProcessor.from_pretrained(str(CHECKPOINT))
    Image.new("RGB", (168, 168), (10, 200, 10)).save(tmp_path / "green.png")
    question = "Is there a red star in the image?\nAnswer the question using a single word or phrase."
    rec = parse_record({"id": "r", "image": "green.png", "conversations": [
        {"from": "human", "value": "<image>\n" + question}, {"from": "gpt", "value": answer}]}, 0)
    trained = Encoder(processor, "chat_template", 4096, str(tmp_path), pad_to_square=False)(rec)
    answer_at = int((trained["labels"] != IGNORE).nonzero()[0])
    supervised = trained["labels"][trained["labels"] != IGNORE].tolist()
    assert processor.tokenizer.convert_ids_to_tokens(supervised) == [answer, "</s>"]
    gen = Generator(build_model(len(processor.tokenizer), layers=2, hidden=32), processor)
    evaluated = gen.encode([gen.prompt(question, True)], [Image.open(tmp_path / "green.png")])["input_ids"][0]
    assert trained["input_ids"][:answer_at].tolist() == evaluated.tolist()
    assert evaluated[0] == processor.tokenizer.bos_token_id


def test_chat_template_answers_are_placed_by_the_template_not_by_searching_the_text():
    """Short answers that occur in the template's own words or in the question ("A" in
    "ASSISTANT:" and in "A. cat") are labelled where the template put them."""
    from transformers import AutoProcessor

    from adsc.training.prompts import render_chat_template

    processor = AutoProcessor.from_pretrained(str(CHECKPOINT))
    rounds = [("<image>\nWhich is it?\nA. cat\nB. dog", "A"), ("And this? A or B?", "B"), ("Say it", "ASSISTANT")]
    rendered = render_chat_template(processor, rounds, "<image>", True)
    assert [rendered.text[a:b] for a, b in rendered.answers] == ["A", "B", "ASSISTANT"]
    for a, _ in rendered.answers:  # each right after the template's assistant prefix
        assert rendered.text[:a].endswith("ASSISTANT: ")

    class Shouting:  # a template that does not write the answer as given
        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            return "".join(c["text"].upper() for m in messages for c in m["content"] if c["type"] == "text")

    with pytest.raises(ValueError, match="write each answer verbatim"):
        render_chat_template(Shouting(), [("q", "yes")], "<image>", False)
