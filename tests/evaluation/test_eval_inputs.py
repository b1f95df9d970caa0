"""Bad benchmark inputs end in a DataError naming the file, the record and the fix (issue 19)."""

import json
import os

import pytest
from eval_fixtures import MME_SUBTASKS, write_gqa, write_mme, write_pope, write_sqa, write_textvqa, write_vqav2
from PIL import Image

from adsc.evaluation.benchmarks import MME, POPE, DataError, load_benchmark


def _rewrite_jsonl(path, edit):
    rows = [json.loads(line) for line in open(path)]
    with open(path, "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in edit(rows))


def test_empty_pope_split_is_an_error_naming_the_file(tmp_path):
    write_pope(str(tmp_path))
    empty = tmp_path / "pope" / "coco" / "coco_pope_popular.json"
    empty.write_text("")
    with pytest.raises(DataError, match=r"coco_pope_popular.json has no questions; the F1 mean needs all"):
        POPE(str(tmp_path))
    empty.unlink()
    with pytest.raises(DataError, match="missing .*coco_pope_popular.json"):
        POPE(str(tmp_path))


def test_mme_without_every_perception_subtask_is_an_error(tmp_path):
    write_mme(str(tmp_path))
    with pytest.raises(DataError, match=r"no questions for subtask\(s\) count, position.*--mme-subtasks "
                                        r"existence,artwork,code_reasoning"):
        MME(str(tmp_path))
    # a declared subtask without questions is named too
    with pytest.raises(DataError, match="no questions for subtask.*color"):
        MME(str(tmp_path), subtasks=(*MME_SUBTASKS, "color"))
    with pytest.raises(DataError, match="unknown subtasks"):
        MME(str(tmp_path), subtasks=("colour",))
    bench = MME(str(tmp_path), subtasks=("existence",))  # a declared subset runs alone, named in the scores
    assert {s.id.split("/")[0] for s in bench.samples} == {"existence"}
    scores = bench.score({s.id: "yes" for s in bench.samples})
    assert scores["declared_subtasks"] == ["existence"] and scores["cognition"] is None


def _corrupt(path, how):
    data = open(path, "rb").read()
    with open(path, "wb") as fh:
        fh.write(data[: len(data) // 2] if how == "truncate" else b"not an image at all")


@pytest.mark.parametrize("how", ["truncate", "garbage"])
def test_corrupt_images_are_found_up_front_with_question_and_path(tmp_path, how):
    write_gqa(str(tmp_path))
    Image.effect_noise((64, 48), 60).convert("RGB").save(tmp_path / "gqa" / "images" / "n2.jpg", quality=95)
    _corrupt(tmp_path / "gqa" / "images" / "n2.jpg", how)
    bench = load_benchmark("gqa", str(tmp_path))
    with pytest.raises(DataError, match=r"question '203' cannot be decoded.*n2.jpg \(and 1 more"):
        bench.check_images()


def test_truncated_png_is_found(tmp_path):
    write_sqa(str(tmp_path))
    path = tmp_path / "scienceqa" / "images" / "test" / "3" / "image.png"
    Image.effect_noise((64, 48), 60).convert("RGB").save(path)
    _corrupt(path, "truncate")
    with pytest.raises(DataError, match=r"question '3' cannot be decoded"):
        load_benchmark("sqa", str(tmp_path)).check_images()


def test_an_image_broken_after_the_check_still_names_its_question(tmp_path):
    from adsc.evaluation.benchmarks import Sample
    from adsc.evaluation.generation import Generator

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"garbage")
    gen = Generator.__new__(Generator)  # only the image path is exercised
    with pytest.raises(DataError, match=r"question 'q7' cannot be read: .*bad.jpg"):
        gen._sample_image(Sample("q7", str(bad), "t"))


WRITERS = {"gqa": write_gqa, "pope": write_pope, "sqa": write_sqa, "textvqa": write_textvqa, "vqav2": write_vqav2}
FILES = {  # a question / annotation file of each benchmark
    "gqa": "gqa/testdev_balanced_questions.json", "pope": "pope/coco/coco_pope_random.json",
    "sqa": "scienceqa/problems.json", "textvqa": "textvqa/TextVQA_0.5.1_val.json",
    "vqav2": "vqav2/v2_mscoco_val2014_annotations.json",
}


@pytest.mark.parametrize("name", sorted(FILES))
@pytest.mark.parametrize("content", ['{"truncated": [1, 2', "[1, 2, 3]", '"a string"', "\xff\xfe"])
def test_bad_json_or_wrong_shape_names_the_file(tmp_path, name, content):
    WRITERS[name](str(tmp_path))
    path = tmp_path / FILES[name]
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(DataError) as err:
        load_benchmark(name, str(tmp_path))
    assert str(path) in str(err.value) or FILES[name].split("/")[-1] in str(err.value)


def test_wrong_shape_records_name_file_and_record(tmp_path):
    write_vqav2(str(tmp_path))
    q = tmp_path / "vqav2" / "v2_OpenEnded_mscoco_val2014_questions.json"
    q.write_text(json.dumps({"questions": [{"question_id": 1, "image_id": 11}]}))
    with pytest.raises(DataError, match=r"v2_OpenEnded_mscoco_val2014_questions.json: question 1 has no 'question'"):
        load_benchmark("vqav2", str(tmp_path))
    q.write_text(json.dumps({"questions": [{"question_id": [1], "image_id": 11, "question": "?"}]}))
    with pytest.raises(DataError, match=r"record 0 has 'question_id' = \[1\], expected a string or an integer"):
        load_benchmark("vqav2", str(tmp_path))
    write_pope(str(tmp_path))
    _rewrite_jsonl(tmp_path / "pope" / "coco" / "coco_pope_random.json", lambda rows: [rows[0], {**rows[1], "image": None}])
    with pytest.raises(DataError, match=r"coco_pope_random.json: question 'random/2' has 'image' = None"):
        load_benchmark("pope", str(tmp_path))


@pytest.mark.parametrize("name", ["/etc/passwd", "../../../../etc/passwd", "sub/../../outside.jpg"])
def test_image_paths_outside_the_image_folder_are_refused(tmp_path, name):
    root = str(tmp_path / "data")
    write_pope(root)
    _rewrite_jsonl(f"{root}/pope/coco/coco_pope_random.json", lambda rows: [{**rows[0], "image": name}, *rows[1:]])
    with pytest.raises(DataError, match=r"question 'random/1': image .* lies outside .*pope/val2014.*--allow-outside-data-root"):
        load_benchmark("pope", root)
    bench = load_benchmark("pope", root, allow_outside_root=True)  # the opt-out, for users who mean it
    assert bench.samples[[s.id for s in bench.samples].index("random/1")].image == os.path.normpath(
        os.path.join(root, "pope", "val2014", name))


def test_gqa_and_sqa_ids_cannot_leave_their_folders(tmp_path):
    write_gqa(str(tmp_path))
    q = tmp_path / "gqa" / "testdev_balanced_questions.json"
    data = json.loads(q.read_text())
    data["201"]["imageId"] = "../../../secret"
    q.write_text(json.dumps(data))
    with pytest.raises(DataError, match="question '201': image .* lies outside"):
        load_benchmark("gqa", str(tmp_path))
    write_sqa(str(tmp_path))
    s = tmp_path / "scienceqa" / "pid_splits.json"
    s.write_text(json.dumps({"test": ["../../../x"]}))
    with pytest.raises(DataError, match="not in .*problems.json"):
        load_benchmark("sqa", str(tmp_path))


def test_unknown_benchmark_option_is_named(data_root):
    with pytest.raises(DataError, match=r"pope: unknown option\(s\) \['split'\]"):
        load_benchmark("pope", data_root, split="val")
    with pytest.raises(DataError, match="data root .* is not a directory"):
        load_benchmark("pope", os.path.join(data_root, "nowhere"))
