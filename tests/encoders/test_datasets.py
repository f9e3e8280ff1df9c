"""Corpus adapters parse labels and speakers from each corpus's naming."""

from __future__ import annotations

from pathlib import Path

import pytest

from avemotion.encoders.datasets import (
    CLASS_SUBSETS,
    EMOTIONS,
    DatasetError,
    csv_items,
    list_corpus,
    list_dataset,
    select_speakers,
)


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def test_ravdess_modalities(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "Actor_01/03-01-05-01-01-01-01.flac",
        "Actor_01/01-01-03-02-01-01-01.mp4",
        "Actor_02/02-01-08-01-02-02-02.mp4",
        "Actor_02/readme.txt",
    )
    audio, classes = list_dataset("ravdess", tmp_path, "audio")
    assert classes == CLASS_SUBSETS["ravdess"] and len(classes) == 8
    assert {(i.label, i.speaker) for i in audio} == {("angry", "Actor_01"), ("happy", "Actor_01")}
    visual, _ = list_dataset("ravdess", tmp_path, "visual")
    assert {i.label for i in visual} == {"happy", "surprised"}


def test_crema_d_pairs_audio_and_video(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "AudioWAV/1001_DFA_ANG_XX.wav",
        "VideoFlash/1001_DFA_ANG_XX.flv",
        "AudioWAV/1002_IEO_SAD_HI.wav",
    )
    items, classes = list_dataset("crema-d", tmp_path, "fusion")
    assert len(classes) == 6
    by_id = {i.clip_id: i for i in items}
    assert by_id["1001_DFA_ANG_XX"].path.suffix == ".flv"
    assert by_id["1001_DFA_ANG_XX"].audio_path.name == "1001_DFA_ANG_XX.wav"
    assert by_id["1002_IEO_SAD_HI"].label == "sad" and by_id["1002_IEO_SAD_HI"].speaker == "1002"


def test_rml_enterface_emodb_mead(tmp_path: Path) -> None:
    _touch(tmp_path / "rml", "s1/an1.avi", "s8/su12.avi")
    rml, _ = list_dataset("rml", tmp_path / "rml")
    assert {(i.speaker, i.label) for i in rml} == {("s1", "angry"), ("s8", "surprised")}
    _touch(
        tmp_path / "ent", "subject 3/disgust/sentence 2/s3_di_2.avi", "subject 6/fear/s6_fe_1.avi"
    )
    ent, _ = list_dataset("enterface", tmp_path / "ent")
    assert {(i.speaker, i.label) for i in ent} == {("subject3", "disgust"), ("subject6", "fearful")}
    _touch(tmp_path / "emodb", "wav/03a01Wa.wav", "wav/16b10Lb.flac")
    emo, classes = list_dataset("emodb", tmp_path / "emodb")
    assert {(i.speaker, i.label) for i in emo} == {("03", "angry"), ("16", "boredom")}
    assert "boredom" in classes
    _touch(
        tmp_path / "mead",
        "M003/video/front/happy/level_1/001.mp4",
        "M003/audio/happy/level_1/001.m4a",
        "W011_front_contempt_level3_001.mp4",
        "M003/video/left_30/happy/level_1/001.mp4",
    )
    mead, _ = list_dataset("mead", tmp_path / "mead")
    assert {(i.speaker, i.label) for i in mead} == {("M003", "happy"), ("W011", "contempt")}
    assert next(i for i in mead if i.speaker == "M003").audio_path.name == "001.m4a"


def test_real_mead_layout(mead_root: Path) -> None:
    items, classes = list_dataset("mead", mead_root)
    assert len(items) == 24 and {i.speaker for i in items} == {"M030", "W009", "W011"}
    assert {i.label for i in items} == set(classes)


def test_baum1s_needs_labels(tmp_path: Path) -> None:
    _touch(tmp_path, "S001/S001_001.mp4", "S002/S002_004.mp4")
    with pytest.raises(DatasetError, match="labels.csv"):
        list_dataset("baum-1s", tmp_path)
    (tmp_path / "labels.csv").write_text("clip,emotion\nS001_001,Happiness\nS002_004,Unsure\n")
    items, _ = list_dataset("baum-1s", tmp_path)
    assert [(i.speaker, i.label) for i in items] == [("S001", "happy")]


def test_generic_csv(tmp_path: Path) -> None:
    _touch(tmp_path, "clips/a.mp4", "clips/a.wav", "clips/b.flac")
    (tmp_path / "data.csv").write_text(
        "path,label,speaker,audio_path\nclips/a.mp4,Anger,spk1,clips/a.wav\nclips/b.flac,sadness,spk2,\n"
    )
    items, classes = list_dataset("csv", tmp_path)
    assert [(i.label, i.speaker) for i in items] == [("angry", "spk1"), ("sad", "spk2")]
    assert items[0].audio_path == tmp_path / "clips/a.wav"
    assert set(classes) <= set(EMOTIONS)


def test_csv_without_speakers_gives_one_speaker(tmp_path: Path) -> None:
    """``path,label`` on every row: recordings without speaker ids, all under NO_SPEAKER."""
    from avemotion.encoders.datasets import NO_SPEAKER

    _touch(tmp_path, "a.wav", "b.wav")
    for text in ("path,label\na.wav,happy\nb.wav,sad\n", "a.wav,happy\n\nb.wav,sad\n"):
        (tmp_path / "data.csv").write_text(text)
        items, _ = list_dataset("csv", tmp_path)
        assert [(i.label, i.speaker) for i in items] == [("happy", NO_SPEAKER), ("sad", NO_SPEAKER)]


def test_csv_paths_may_not_escape_the_root(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "outside.wav").write_bytes(b"")
    csv_file = tmp_path / "root" / "data.csv"
    csv_file.write_text("../outside.wav,happy,s1\n")
    with pytest.raises(
        DatasetError, match=r"data.csv:1: path '../outside.wav' is outside the dataset root"
    ):
        csv_items(csv_file)
    assert len(csv_items(csv_file, allow_outside_root=True)) == 1


def test_allow_outside_root_is_refused_where_no_csv_reads_it(tmp_path: Path) -> None:
    """Only a CSV lists paths that may leave the root: for a folder layout the option would
    be accepted and ignored, so it is refused in one line naming it. Unset (False, None) it
    changes nothing, and the csv dataset takes it."""
    _touch(tmp_path, "ravdess/Actor_01/03-01-05-01-01-01-01.flac")
    root = tmp_path / "ravdess"
    expected = (
        "--allow-outside-root: only the csv dataset reads it (its paths may leave the root); "
        f"ravdess is listed from its folder layout under {root}"
    )
    with pytest.raises(DatasetError) as caught:
        list_corpus("ravdess", root, "audio", allow_outside_root=True)
    assert str(caught.value) == expected
    with pytest.raises(DatasetError) as caught:  # list_dataset goes through list_corpus
        list_dataset("ravdess", root, "audio", allow_outside_root=True)
    assert str(caught.value) == expected
    for unset in (False, None):
        assert len(list_corpus("ravdess", root, "audio", allow_outside_root=unset).items) == 1
    (tmp_path / "outside.wav").write_bytes(b"")
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "data.csv").write_text("../outside.wav,happy,s1\n")
    corpus = list_corpus("csv", tmp_path / "csv", allow_outside_root=True)
    assert [item.path for item in corpus.items] == [tmp_path / "outside.wav"]


def test_train_encoder_refuses_allow_outside_root_before_writing(tmp_path: Path) -> None:
    from avemotion.encoders.train import TrainConfig, train_encoder

    _touch(tmp_path, "ravdess/Actor_01/03-01-05-01-01-01-01.flac")
    out = tmp_path / "encoder"
    config = TrainConfig(
        dataset="ravdess",
        root=str(tmp_path / "ravdess"),
        modality="audio",
        out=str(out),
        allow_outside_root=True,
    )
    with pytest.raises(DatasetError, match=r"^--allow-outside-root: only the csv dataset"):
        train_encoder(config)
    assert not out.exists()


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("a.wav,elated,s1", "label 'elated' is not a known emotion"),
        ("a.wav,happy\nb.wav,sad,s1", "expected path,label,speaker"),
        ("a.wav,happy, ", "empty speaker"),
    ],
)
def test_csv_row_errors_name_the_row(tmp_path: Path, row: str, message: str) -> None:
    csv_file = tmp_path / "data.csv"
    csv_file.write_text(row + "\n")
    with pytest.raises(DatasetError, match=message) as caught:
        csv_items(csv_file)
    assert "data.csv:1" in str(caught.value)


def test_unknown_corpus_and_speakers(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown corpus"):
        list_dataset("iemocap", tmp_path)
    _touch(tmp_path, "03a01Wa.wav")
    items, _ = list_dataset("emodb", tmp_path)
    with pytest.raises(DatasetError, match="unknown speaker"):
        select_speakers(items, ["99"])
    with pytest.raises(DatasetError, match="no emodb clips"):
        list_dataset(
            "emodb",
            tmp_path / "nothing_here" if (tmp_path / "nothing_here").mkdir() is None else tmp_path,
        )
