"""Label masks, record checks, the over-length rule, image failures and the collator."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from adsc.tiny import IMAGE_TOKEN, tiny_llava_processor
from adsc.training.data import IGNORE, META, Collator, Encoder
from adsc.training.prompts import VICUNA_SYSTEM
from adsc.training.records import MalformedRecord, parse_record, parse_records


@pytest.fixture(scope="module")
def processor():
    return tiny_llava_processor(image_size=48, patch=8)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("img")
    Image.new("RGB", (60, 40), (200, 10, 10)).save(root / "red.png")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return str(root)


def encoder(processor, images, max_length=2048):
    return Encoder(processor, "vicuna_v1", max_length, images, pad_to_square=True)


def tokens(processor, text):
    """Hand tokenisation for the word-level test tokenizer: words and punctuation, nothing merged."""
    return processor.tokenizer.convert_tokens_to_ids(text.split(" "))


SYS = " ".join(VICUNA_SYSTEM.replace(".", " .").replace(",", " ,").replace("'", " ' ").split())


def test_single_turn_mask(processor, images):
    rec = parse_record({"id": "a", "image": "red.png", "conversations": [
        {"from": "human", "value": "what color ?\n<image>"}, {"from": "gpt", "value": "red"}]}, 0)
    out = encoder(processor, images)(rec)
    prompt = tokens(processor, f"<s> {SYS} USER :") + [IMAGE_TOKEN] * 36 + tokens(processor, "\n what color ? ASSISTANT :")
    answer = tokens(processor, "red </s>")
    assert out["input_ids"].tolist() == prompt + answer
    assert out["labels"].tolist() == [IGNORE] * len(prompt) + answer
    assert out["pixel_values"].shape == (1, 3, 48, 48)


def test_multi_turn_mask(processor, images):
    rec = parse_record({"id": "b", "image": "red.png", "conversations": [
        {"from": "human", "value": "<image>\nwhat color ?"}, {"from": "gpt", "value": "red"},
        {"from": "human", "value": "is it blue ?"}, {"from": "gpt", "value": "no ."}]}, 0)
    out = encoder(processor, images)(rec)
    r1 = tokens(processor, f"<s> {SYS} USER :") + [IMAGE_TOKEN] * 36 + tokens(processor, "\n what color ? ASSISTANT :")
    a1 = tokens(processor, "red </s>")
    r2 = tokens(processor, "USER : is it blue ? ASSISTANT :")
    a2 = tokens(processor, "no . </s>")
    assert out["input_ids"].tolist() == r1 + a1 + r2 + a2
    assert out["labels"].tolist() == [IGNORE] * len(r1) + a1 + [IGNORE] * len(r2) + a2


def test_text_only_mask(processor, images):
    rec = parse_record({"id": "c", "conversations": [
        {"from": "human", "value": "what is the color of the sky ?"}, {"from": "gpt", "value": "blue"}]}, 0)
    out = encoder(processor, images)(rec)
    prompt = tokens(processor, f"<s> {SYS} USER : what is the color of the sky ? ASSISTANT :")
    assert out["input_ids"].tolist() == prompt + tokens(processor, "blue </s>")
    assert out["labels"].tolist() == [IGNORE] * len(prompt) + tokens(processor, "blue </s>")
    assert "pixel_values" not in out


def test_image_tag_moves_to_front_of_first_turn():
    rec = parse_record({"id": "d", "image": "x.png", "conversations": [
        {"from": "human", "value": "what color ?\n<image>"}, {"from": "gpt", "value": "red"}]}, 0)
    assert rec.rounds[0][0] == "<image>\nwhat color ?"
    rec = parse_record({"id": "e", "image": "x.png", "conversations": [
        {"from": "human", "value": "what color ?"}, {"from": "gpt", "value": "red"}]}, 0)
    assert rec.rounds[0][0] == "<image>\nwhat color ?"  # no tag: the image still goes first


@pytest.mark.parametrize("raw, problem", [
    ({"id": "m1", "conversations": [{"from": "human", "value": "<image>\nhi"}, {"from": "gpt", "value": "x"}]}, "no 'image'"),
    ({"id": "m2", "image": "a.png", "conversations": [{"from": "human", "value": "q"}]}, "no answer"),
    ({"id": "m3", "conversations": [{"from": "human", "value": "q"}, {"from": "human", "value": "q"}]}, "alternate"),
    ({"id": "m4", "conversations": "hello"}, "non-empty list"),
    ({"id": "m5", "conversations": [{"from": "bot", "value": "q"}]}, "'bot'"),
    ({"id": "m6", "image": "a.png", "conversations": [
        {"from": "human", "value": "<image> <image>"}, {"from": "gpt", "value": "x"}]}, "2 <image> tags"),
])
def test_malformed_record_names_id_and_problem(raw, problem):
    with pytest.raises(MalformedRecord) as err:
        parse_record(raw, 7)
    assert raw["id"] in str(err.value) and problem in str(err.value)


def test_malformed_records_stop_or_are_skipped():
    raw = [{"id": "ok", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
           {"id": "bad", "conversations": []}]
    with pytest.raises(MalformedRecord, match="(?s)'bad'.*--skip-malformed"):
        parse_records(raw, skip_malformed=False)
    records, problems = parse_records(raw, skip_malformed=True)
    assert [r.id for r in records] == ["ok"] and len(problems) == 1


def test_over_long_drops_whole_trailing_rounds(processor, images):
    rec = parse_record({"id": "f", "image": "red.png", "conversations": [
        {"from": "human", "value": "<image>\nwhat color ?"}, {"from": "gpt", "value": "red"},
        {"from": "human", "value": "is it blue ?"}, {"from": "gpt", "value": "no"}]}, 0)
    full = encoder(processor, images)(rec)["input_ids"]
    one_round = len(full) - len(tokens(processor, "USER : is it blue ? ASSISTANT : no </s>"))
    out = encoder(processor, images, max_length=len(full) - 1)(rec)
    assert len(out["input_ids"]) == one_round  # the second round went whole; the image stayed whole
    assert (out["input_ids"] == IMAGE_TOKEN).sum() == 36
    assert out["labels"][-2:].tolist() == tokens(processor, "red </s>")
    assert encoder(processor, images, max_length=one_round - 1)(rec) == {"id": "f", "skip": "too_long"}


def test_missing_and_unreadable_images_are_skipped(processor, images, caplog):
    conv = [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "a"}]
    enc = encoder(processor, images)
    with caplog.at_level("WARNING", logger="adsc.training"):
        assert enc(parse_record({"id": "g", "image": "nope.png", "conversations": conv}, 0))["skip"] == "missing_image"
        assert enc(parse_record({"id": "h", "image": "broken.jpg", "conversations": conv}, 0))["skip"] == "unreadable_image"
    assert "record g" in caplog.text and "record h" in caplog.text


def test_collator_right_pads_and_concatenates_images(processor, images):
    enc = encoder(processor, images)
    img = enc(parse_record({"id": "i", "image": "red.png", "conversations": [
        {"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "red"}]}, 0))
    txt = enc(parse_record({"id": "j", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}, 0))
    batch = Collator(pad_id=0)([txt, {"id": "k", "skip": "missing_image"}, img])
    n_txt, n_img = len(txt["input_ids"]), len(img["input_ids"])
    assert batch["input_ids"].shape == (2, n_img)
    assert batch["input_ids"][0, n_txt:].eq(0).all() and batch["labels"][0, n_txt:].eq(IGNORE).all()
    assert batch["attention_mask"].sum(1).tolist() == [n_txt, n_img]
    assert batch["pixel_values"].shape == (1, 3, 48, 48)
    assert batch[META]["skipped"] == [("k", "missing_image")] and batch[META]["ids"] == ["j", "i"]
    empty = Collator(pad_id=0)([{"id": "k", "skip": "too_long"}])
    assert empty["input_ids"].shape == (1, 1) and empty["labels"].eq(IGNORE).all()


def test_labels_follow_a_processor_that_rewrites_around_the_image(images):
    """Regression: InternVL's processor writes <img> + context tokens + </img> for its marker (Gemma 3 adds blank
    lines, Idefics3 row / column tokens); labels were aligned for one repeated token only, so every such record
    failed with "token ids do not match"."""
    from adsc.tiny import tiny_chat_template
    from adsc.tiny_internvl import INTERNVL_MARKERS, tiny_internvl_processor

    processor = tiny_internvl_processor()
    processor.chat_template = tiny_chat_template("<IMG_CONTEXT>")
    rec = parse_record({"id": "c", "image": "red.png", "conversations": [
        {"from": "human", "value": "<image>\nwhat color ?"}, {"from": "gpt", "value": "red"}]}, 0)
    out = Encoder(processor, "chat_template", 2048, images, pad_to_square=False)(rec)
    ids, labels = out["input_ids"].tolist(), out["labels"].tolist()
    start, end = ids.index(INTERNVL_MARKERS["<img>"]), ids.index(INTERNVL_MARKERS["</img>"])
    assert ids[start + 1 : end] == [IMAGE_TOKEN] * (end - start - 1) and out["pixel_values"].shape[0] == 3  # 2 tiles + thumbnail
    answer = tokens(processor, "red")  # the template's last turn ends the text
    assert labels == [IGNORE] * (len(ids) - len(answer)) + answer and ids[-len(answer):] == answer


def test_collator_zero_pads_image_tensors_of_different_shapes():
    """Regression: LLaVA-NeXT samples of different image sizes have different tile counts ((1, tiles, 3, H, W)
    pixel_values), and the collator's plain concatenation crashed on the first such batch; the processor's own
    batch pads them with zeros (image_sizes tells the model the real count)."""
    three, five = torch.rand(1, 3, 3, 4, 4), torch.rand(1, 5, 3, 4, 4)
    items = [{"id": str(i), "input_ids": torch.tensor([5, 6]), "labels": torch.tensor([5, 6]), "pixel_values": pv,
              "image_sizes": torch.tensor([[40, 60]])} for i, pv in enumerate((three, five))]
    batch = Collator(pad_id=0)(items)
    assert batch["pixel_values"].shape == (2, 5, 3, 4, 4) and batch["image_sizes"].shape == (2, 2)
    assert torch.equal(batch["pixel_values"][0, :3], three[0]) and not batch["pixel_values"][0, 3:].any()
    assert torch.equal(batch["pixel_values"][1], five[0])
