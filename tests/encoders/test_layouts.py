"""Corpus layouts (:mod:`avemotion.encoders.layouts`), each adapter called directly: the
labels, speakers and clip ids it reads from names worked out by hand, the reason it
records for every file it refuses, and one-line errors for a broken label sheet.

(``tests/encoders/test_datasets.py`` lists corpora through
:func:`~avemotion.encoders.datasets.list_dataset`; here the adapters and tables are tested
on their own.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from avemotion.encoders.corpus_files import Refusals
from avemotion.encoders.layouts import (
    ADAPTERS,
    CLASS_SUBSETS,
    EMOTIONS,
    LABEL_SHEET,
    DatasetError,
    Item,
    baum1s,
    crema_d,
    emodb,
    enterface,
    mead,
    normalise_label,
    ravdess,
    rml,
)


def _touch(root: Path, *names: str) -> list[Path]:
    paths = []
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        paths.append(path)
    return paths


def _triples(items: list[Item]) -> set[tuple[str, str, str]]:
    return {(i.clip_id, i.label, i.speaker) for i in items}


# ----------------------------------------------------------------------------- tables
def test_class_subsets_by_hand() -> None:
    """Sizes: RAVDESS 8 (no contempt, boredom), CREMA-D 6, RML 6, BAUM-1s 9 (no calm),
    eNTERFACE 6, MEAD 8 (no calm, boredom), EmoDB 7; every subset in vocabulary order."""
    assert len(EMOTIONS) == 10 and len(set(EMOTIONS)) == 10
    sizes = {name: len(classes) for name, classes in CLASS_SUBSETS.items()}
    assert sizes == {
        "ravdess": 8,
        "crema-d": 6,
        "rml": 6,
        "baum-1s": 9,
        "enterface": 6,
        "mead": 8,
        "emodb": 7,
    }
    for classes in CLASS_SUBSETS.values():
        assert classes == tuple(e for e in EMOTIONS if e in classes)
    assert CLASS_SUBSETS["emodb"] == (
        "neutral",
        "happy",
        "sad",
        "angry",
        "fearful",
        "disgust",
        "boredom",
    )
    assert set(ADAPTERS) == set(CLASS_SUBSETS)


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        (" Happiness ", "happy"),
        ("ANG", "angry"),
        ("n", "neutral"),
        ("Fear", "fearful"),
        ("disgusted", "disgust"),
        ("su", "surprised"),
        ("joy", "happy"),
        ("Boredom", "boredom"),
    ],
)
def test_normalise_label_maps_spellings(raw: str, label: str) -> None:
    assert normalise_label(raw, "x") == label


def test_every_vocabulary_word_maps_to_itself() -> None:
    assert [normalise_label(e, "x") for e in EMOTIONS] == list(EMOTIONS)


@pytest.mark.parametrize("raw", ["elated", "", "happy!", "h"])
def test_unknown_label_refused_naming_the_source(raw: str) -> None:
    with pytest.raises(DatasetError) as caught:
        normalise_label(raw, "clips/a.wav")
    message = str(caught.value)
    assert message.startswith(f"clips/a.wav: label {raw!r} is not a known emotion (neutral, ")
    assert message.endswith(", contempt, boredom)") and "\n" not in message


def test_a_missing_root_is_refused(tmp_path: Path) -> None:
    for adapter in ADAPTERS.values():
        if adapter is baum1s:  # asks for its labels.csv first
            continue
        with pytest.raises(DatasetError, match="missing: dataset root is not a directory"):
            adapter(tmp_path / "missing")


# ----------------------------------------------------------------------------- RAVDESS
def test_ravdess_emotion_codes_by_hand(tmp_path: Path) -> None:
    """Code EE = 01 … 08 is the 1st … 8th class of the RAVDESS subset; speaker Actor_AA."""
    names = [f"03-01-{code:02d}-01-01-01-{code + 10:02d}.wav" for code in range(1, 9)]
    _touch(tmp_path, *names)
    items = ravdess(tmp_path)
    got = {i.clip_id: (i.label, i.speaker) for i in items}
    assert got == {
        "03-01-01-01-01-01-11": ("neutral", "Actor_11"),
        "03-01-02-01-01-01-12": ("calm", "Actor_12"),
        "03-01-03-01-01-01-13": ("happy", "Actor_13"),
        "03-01-04-01-01-01-14": ("sad", "Actor_14"),
        "03-01-05-01-01-01-15": ("angry", "Actor_15"),
        "03-01-06-01-01-01-16": ("fearful", "Actor_16"),
        "03-01-07-01-01-01-17": ("disgust", "Actor_17"),
        "03-01-08-01-01-01-18": ("surprised", "Actor_18"),
    }


@pytest.mark.parametrize(
    ("modality", "kept"),
    [
        ("audio", {"01", "03"}),
        ("visual", {"01", "02"}),
        ("fusion", {"01"}),
        ("any", {"01", "02", "03"}),
    ],
)
def test_ravdess_modality_picks_files_by_their_first_field(
    tmp_path: Path, modality: str, kept: set[str]
) -> None:
    """01 audio-visual, 02 video-only, 03 audio-only; each file left out is refused with
    its kind."""
    files = _touch(
        tmp_path,
        "Actor_01/01-01-03-01-01-01-01.mp4",
        "Actor_01/02-01-03-01-01-01-01.mp4",
        "Actor_01/03-01-03-01-01-01-01.wav",
    )
    refused: Refusals = {}
    items = ravdess(tmp_path, modality, refused)
    assert {i.path.stem[:2] for i in items} == kept
    assert {i.clip_id for i in items} == {f"Actor_01/{k}-01-03-01-01-01-01" for k in kept}
    kinds = {"01": "audio-visual", "02": "video-only", "03": "audio-only"}
    assert refused == {
        path: f"RAVDESS {kinds[path.stem[:2]]} file, not used for {modality}"
        for path in files
        if path.stem[:2] not in kept
    }


def test_ravdess_refuses_names_out_of_its_code_ranges(tmp_path: Path) -> None:
    """Emotion 09, modality 04, an extra suffix: not RAVDESS names."""
    files = _touch(
        tmp_path,
        "03-01-09-01-01-01-01.wav",
        "04-01-01-01-01-01-01.wav",
        "03-01-01-01-01-01-01b.wav",
    )
    refused: Refusals = {}
    assert ravdess(tmp_path, "audio", refused) == []
    assert refused == dict.fromkeys(
        files, "name does not follow the RAVDESS naming MM-VV-EE-II-SS-RR-AA"
    )


# ----------------------------------------------------------------------------- CREMA-D
def test_crema_d_audio_keeps_the_wav_and_refuses_the_video(tmp_path: Path) -> None:
    wav, flv, _, bad = _touch(
        tmp_path,
        "AudioWAV/1091_TIE_HAP_X.wav",
        "VideoFlash/1091_TIE_HAP_X.flv",
        "VideoFlash/1002_IEO_DIS_MD.flv",
        "AudioWAV/1091_TIE_JOY_XX.wav",
    )
    refused: Refusals = {}
    items = crema_d(tmp_path, "audio", refused)
    by_id = {i.clip_id: i for i in items}
    assert by_id["1091_TIE_HAP_X"] == Item(wav, "happy", "1091", "1091_TIE_HAP_X", None)
    # a clip found as video only is still listed, from its video
    assert by_id["1002_IEO_DIS_MD"].label == "disgust"
    assert by_id["1002_IEO_DIS_MD"].path.suffix == ".flv"
    assert refused == {
        flv: "1091_TIE_HAP_X.wav is this clip's file for audio",
        bad: "name does not follow the CREMA-D naming ID_SEN_EMO_LVL",
    }


def test_crema_d_fusion_takes_the_video_with_its_audio(tmp_path: Path) -> None:
    wav, flv = _touch(tmp_path, "AudioWAV/1001_DFA_NEU_XX.wav", "VideoFlash/1001_DFA_NEU_XX.flv")
    refused: Refusals = {}
    assert crema_d(tmp_path, "fusion", refused) == [
        Item(flv, "neutral", "1001", "1001_DFA_NEU_XX", wav)
    ]
    assert refused == {}


# ----------------------------------------------------------------------------- RML
def test_rml_speakers_from_folders_or_file_names(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "s1/an1.avi",
        "Subject 7/session/su12.avi",
        "subject_3/fe-2.avi",
        "s2_ha3.avi",
        "s08/sa.avi",
    )
    assert _triples(rml(tmp_path)) == {
        ("s1/an1", "angry", "s1"),
        ("Subject 7/session/su12", "surprised", "s7"),
        ("subject_3/fe-2", "fearful", "s3"),
        ("s2_ha3", "happy", "s2"),
        ("s08/sa", "sad", "s8"),
    }


def test_rml_refuses_without_a_code_or_a_subject(tmp_path: Path) -> None:
    no_code, no_subject = _touch(tmp_path, "s1/neutral1.avi", "clips/di4.avi")
    refused: Refusals = {}
    assert rml(tmp_path, refused=refused) == []
    assert refused == {
        no_code: "no RML emotion code (an, di, fe, ha, sa, su) in its name or folder",
        no_subject: "no RML subject folder sN in its name or folder",
    }


# ----------------------------------------------------------------------------- eNTERFACE
def test_enterface_names_by_hand(tmp_path: Path) -> None:
    """Speaker ``subjectN`` with N read as a number: s_06 is subject6, not subject06."""
    (bad,) = _touch(
        tmp_path, "subject 12/sadness/sentence 3/s12_sa_3.avi", "s_06_an_1.avi", "x/an_1.avi"
    )[2:]
    refused: Refusals = {}
    assert _triples(enterface(tmp_path, refused=refused)) == {
        ("subject 12/sadness/sentence 3/s12_sa_3", "sad", "subject12"),
        ("s_06_an_1", "angry", "subject6"),
    }
    assert refused == {bad: "name does not follow the eNTERFACE naming sN_<code>_M"}


# ----------------------------------------------------------------------------- MEAD
def test_mead_lists_frontal_video_only(tmp_path: Path) -> None:
    video, audio, side_flat, side_nested, flat, stray = _touch(
        tmp_path,
        "M003/video/front/surprised/level_2/004.mp4",
        "M003/audio/surprised/level_2/004.m4a",
        "W011_left_30_happy_level1_001.mp4",
        "M003/video/down/happy/level_1/001.mp4",
        "W011_front_contempt_level_3_002.mp4",
        "notes.mp4",
    )
    refused: Refusals = {}
    items = mead(tmp_path, refused=refused)
    assert sorted(items, key=lambda i: i.clip_id) == [
        Item(video, "surprised", "M003", "M003_front_surprised_level_2_004", audio),
        Item(flat, "contempt", "W011", "W011_front_contempt_level_3_002", None),
    ]
    assert refused == {
        audio: "no frontal MEAD video of this name (MEAD naming)",
        side_flat: "MEAD camera view other than front (only frontal video)",
        side_nested: "MEAD camera view other than front (only frontal video)",
        stray: "no frontal MEAD video of this name (MEAD naming)",
    }


def test_mead_nested_video_without_audio_folder(tmp_path: Path) -> None:
    (video,) = _touch(tmp_path, "W009/video/front/angry/level_1/010.mp4")
    assert mead(tmp_path) == [Item(video, "angry", "W009", "W009_front_angry_level_1_010", None)]


# ----------------------------------------------------------------------------- EmoDB
def test_emodb_emotion_letters_by_hand(tmp_path: Path) -> None:
    """SS TTT E V: W Wut angry, L Langeweile boredom, E Ekel disgust, A Angst fearful,
    F Freude happy, T Trauer sad, N neutral."""
    _touch(tmp_path, *(f"wav/03a01{letter}a.wav" for letter in "WLEAFTN"), "wav/16b10Xb.wav")
    refused: Refusals = {}
    items = emodb(tmp_path, refused=refused)
    assert {i.clip_id: i.label for i in items} == {
        "wav/03a01Wa": "angry",
        "wav/03a01La": "boredom",
        "wav/03a01Ea": "disgust",
        "wav/03a01Aa": "fearful",
        "wav/03a01Fa": "happy",
        "wav/03a01Ta": "sad",
        "wav/03a01Na": "neutral",
    }
    assert {i.speaker for i in items} == {"03"}
    assert refused == {
        tmp_path / "wav/16b10Xb.wav": "name does not follow the EmoDB naming SSTTTEV"
    }


# ----------------------------------------------------------------------------- BAUM-1s
def test_baum1s_labels_from_its_sheet_and_reasons_for_the_rest(tmp_path: Path) -> None:
    """Row 2 labels S001_001; row 3's "Unsure" is outside the vocabulary; S001_009 has no
    row; ``clip.mp4`` names no speaker; the sheet itself is refused as a label sheet."""
    kept, unsure, no_row, lower, no_speaker = _touch(
        tmp_path,
        "S001/S001_001.mp4",
        "S002/S002_004.mp4",
        "S001/S001_009.mp4",
        "s004/s004_002.mp4",
        "other/clip.mp4",
    )
    (tmp_path / "labels.csv").write_text(
        "clip,emotion\nS001_001.mp4,Happiness\nS002_004,Unsure\ns004_002,ANGER\n"
    )
    refused: Refusals = {}
    items = baum1s(tmp_path, refused=refused)
    assert sorted(items, key=lambda i: i.clip_id) == [
        Item(kept, "happy", "S001", "S001/S001_001"),
        Item(lower, "angry", "S004", "s004/s004_002"),
    ]
    assert refused == {
        tmp_path / "labels.csv": LABEL_SHEET,
        unsure: "labels.csv:3: emotion 'unsure' is outside the vocabulary",
        no_row: "no row in labels.csv",
        no_speaker: "name does not start with a BAUM-1s speaker Snnn",
    }


@pytest.mark.parametrize(
    ("sheet", "message"),
    [
        (None, ": BAUM-1s needs a labels.csv with columns clip,emotion"),
        ("clip,label\nS001_001,happy\n", ": expected columns clip,emotion"),
        ("clip,emotion\nS001_001,happy\nS001_002, \n", ":3: empty emotion"),
        ("clip,emotion\nS001_001,happy\n,sad\n", ":3: empty clip"),
    ],
)
def test_baum1s_broken_sheet_refused_in_one_line(
    tmp_path: Path, sheet: str | None, message: str
) -> None:
    _touch(tmp_path, "S001/S001_001.mp4")
    if sheet is not None:
        (tmp_path / "labels.csv").write_text(sheet)
    with pytest.raises(DatasetError) as caught:
        baum1s(tmp_path)
    assert str(caught.value) == f"{tmp_path / 'labels.csv'}{message}"


def test_adapters_without_a_refusal_dict_still_list(tmp_path: Path) -> None:
    """``refused`` is optional: the same items, nothing recorded anywhere."""
    _touch(tmp_path, "03a01Wa.wav", "readme.wav")
    assert [i.label for i in emodb(tmp_path)] == ["angry"]


def test_ravdess_refuses_an_unknown_modality(tmp_path: Path) -> None:
    """A misspelt modality used to keep every file; it is now one line naming the field."""
    _touch(tmp_path, "Actor_01/03-01-03-01-01-01-01.wav")
    with pytest.raises(
        ValueError,
        match=r"^modality: expected one of \['audio', 'visual', 'fusion', 'any'\], got 'audi'",
    ):
        ravdess(tmp_path, "audi", {})


def test_crema_d_keeps_one_file_per_kind_and_says_which(tmp_path: Path) -> None:
    """The same clip as .mp3 and .wav: the first listed is used, the other refused with
    the name of the one kept (before, one silently replaced the other)."""
    _touch(tmp_path, "AudioWAV/1001_DFA_ANG_XX.mp3", "AudioWAV/1001_DFA_ANG_XX.wav")
    refused: Refusals = {}
    (item,) = crema_d(tmp_path, "audio", refused)
    assert item.path.name == "1001_DFA_ANG_XX.mp3"
    assert refused == {
        tmp_path / "AudioWAV/1001_DFA_ANG_XX.wav": "a second audio file of clip "
        "1001_DFA_ANG_XX: 1001_DFA_ANG_XX.mp3 is used"
    }


# ----------------------------------------------------------------------------- one file per clip
@pytest.mark.parametrize(
    ("adapter", "first", "second", "clip_id"),
    [
        (
            ravdess,
            "Actor_01/03-01-03-01-01-01-01.flac",
            "Actor_01/03-01-03-01-01-01-01.ogg",
            "Actor_01/03-01-03-01-01-01-01",
        ),
        (rml, "s1/an1.avi", "s1/an1.mp4", "s1/an1"),
        (enterface, "s1_an_1.avi", "s1_an_1.mp4", "s1_an_1"),
        (emodb, "wav/03a01Wa.flac", "wav/03a01Wa.wav", "wav/03a01Wa"),
        (
            mead,
            "W011_front_contempt_level_3_002.mkv",
            "W011_front_contempt_level_3_002.mp4",
            "W011_front_contempt_level_3_002",
        ),
        (baum1s, "S001/S001_001.avi", "S001/S001_001.mp4", "S001/S001_001"),
    ],
)
def test_two_files_of_one_clip_id_keep_the_first(
    tmp_path: Path, adapter: Callable[..., list[Item]], first: str, second: str, clip_id: str
) -> None:
    """``X.flac`` beside ``X.ogg`` gave two items of one clip id: extract failed late with
    "clip_ids: expected N unique ids" naming no file, and training used both copies."""
    used, other = _touch(tmp_path, first, second)
    (tmp_path / "labels.csv").write_text("clip,emotion\nS001_001,happy\n")  # for BAUM-1s
    refused: Refusals = {}
    (item,) = adapter(tmp_path, "visual" if adapter is mead else "audio", refused)
    assert (item.path, item.clip_id) == (used, clip_id)
    assert refused[other] == f"a second file of clip {clip_id}: {used.name} is used"


def test_mead_flat_and_nested_video_of_one_clip_keep_the_nested(tmp_path: Path) -> None:
    """The flat name of a nested clip is the same clip id: the nested one, listed first,
    keeps its audio; the flat one is refused naming the nested file by its path."""
    video, audio, flat = _touch(
        tmp_path,
        "M003/video/front/surprised/level_2/004.mp4",
        "M003/audio/surprised/level_2/004.m4a",
        "M003_front_surprised_level_2_004.mp4",
    )
    refused: Refusals = {}
    assert mead(tmp_path, refused=refused) == [
        Item(video, "surprised", "M003", "M003_front_surprised_level_2_004", audio)
    ]
    assert refused[flat] == (
        "a second file of clip M003_front_surprised_level_2_004: "
        "M003/video/front/surprised/level_2/004.mp4 is used"
    )


def test_baum1s_conflicting_rows_refuse_the_clip_and_orphan_rows_warn(tmp_path: Path) -> None:
    """Rows 2 and 4 label S001_001 happy, then angry: it used to take the last; now it is
    refused naming both rows. Rows 3 and 7 agree (sad, Sadness): used. Rows 5 and 6 name
    no media file: they used to vanish; one warning names labels.csv and the rows."""
    conflicting, agreed = _touch(tmp_path, "S001/S001_001.mp4", "S001/S001_002.mp4")
    (tmp_path / "labels.csv").write_text(
        "clip,emotion\nS001_001,happy\nS001_002,sad\nS001_001.mp4,anger\n"
        "S001_003,neutral\nS009_001,happy\nS001_002,Sadness\n"
    )
    refused: Refusals = {}
    with pytest.warns(UserWarning) as caught:
        items = baum1s(tmp_path, refused=refused)
    assert items == [Item(agreed, "sad", "S001", "S001/S001_002")]
    assert refused[conflicting] == (
        "labels.csv:2,4: rows give different emotions 'happy' (row 2), 'angry' (row 4)"
    )
    (warning,) = caught
    assert str(warning.message) == (
        f"{tmp_path / 'labels.csv'}:5,6: 2 clip(s) with no media file under {tmp_path} "
        "(S001_003, S009_001); their rows are unused"
    )
