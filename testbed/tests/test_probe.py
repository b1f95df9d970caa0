"""The image-dependence control (adsc_testbed.probe) on the committed checkpoint."""

import json

import pytest

from adsc.evaluation.generation import load_model
from adsc_testbed import GridSpec, TestbedConfig, generate
from adsc_testbed.experiment import CHECKPOINT
from adsc_testbed.probe import CONDITIONS, HELDOUT_FILES, image_dependence, main, table


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("heldout")
    generate(root, TestbedConfig(seed=5, num_images=1, num_train=6, spec=GridSpec(168, 14, 2)))
    model, processor = load_model(str(CHECKPOINT), dtype="float32")
    return root, model, processor


def test_three_conditions_on_the_same_records(setup):
    root, model, processor = setup
    result = image_dependence(model, processor, str(root / "train/llava_instruct_synthetic.json"), str(root / "train"),
                              n=8, batch_size=4)
    assert set(result) == set(CONDITIONS)
    for v in result.values():
        assert v["loss"] > 0 and 0 <= v["answer_acc"] <= 1
        assert sum(1 for _ in v["families"]) >= 2 and all(f["loss"] > 0 for f in v["families"].values())
    assert "| shuffled |" in table(result)


def test_shuffling_one_image_changes_nothing(setup, tmp_path):
    # every record points at the same picture: rolling the batch's images is then the identity
    root, model, processor = setup
    records = json.loads((root / "train/llava_instruct_synthetic.json").read_text())[:6]
    for r in records:
        r["image"] = records[0]["image"]
    data = tmp_path / "same.json"
    data.write_text(json.dumps(records))
    result = image_dependence(model, processor, str(data), str(root / "train"), n=6, batch_size=6)
    assert result["matched"] == result["shuffled"]


def test_command_line_probes_the_qa_mix_the_reading_and_counting_drills_and_scienceqa_alone(setup, tmp_path, capsys):
    root, _, _ = setup
    out = tmp_path / "probe.json"
    assert main([str(CHECKPOINT), str(root), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result) == set(HELDOUT_FILES) == {"qa", "read", "count", "scienceqa"}
    assert set(result["read"]["matched"]["families"]) == {"drill_read"}
    assert set(result["count"]["matched"]["families"]) == {"drill_count"}
    assert set(result["scienceqa"]["matched"]["families"]) == {"scienceqa"}
    printed = capsys.readouterr().out
    assert "count (llava_drill_count_synthetic.json" in printed and "scienceqa only" in printed


def test_an_empty_record_file_is_named(setup, tmp_path):
    root, model, processor = setup
    empty = tmp_path / "none.json"
    empty.write_text("[]")
    with pytest.raises(ValueError, match="none.json holds no records"):
        image_dependence(model, processor, str(empty), str(root / "train"))
    with pytest.raises(ValueError, match="holds no textbook records"):  # a family the file lacks
        image_dependence(model, processor, str(root / "train/llava_instruct_synthetic.json"), str(root / "train"),
                         family="textbook")
