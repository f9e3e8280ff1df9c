"""File accounting: the walk sees every entry, each unused file gets its reason, and the
counts add up (seen = kept + skipped)."""

from __future__ import annotations

import os
from pathlib import Path

from avemotion.encoders.corpus_files import FileAccount, generic_reason, printable, walk
from avemotion.encoders.datasets import list_corpus


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def test_walk_sees_hidden_files_dangling_links_and_linked_folders(tmp_path: Path) -> None:
    _touch(tmp_path / "root", "a.wav", ".hidden.wav", "sub/b.txt")
    _touch(tmp_path / "elsewhere", "c.flac")
    root = tmp_path / "root"
    os.symlink(tmp_path / "elsewhere", root / "linked")
    os.symlink(root / "gone.wav", root / "dangling.wav")
    os.symlink(root, root / "sub" / "loop")  # a link back up: entered once only
    _touch(root, "out/x.npy")
    found = [p.relative_to(root).as_posix() for p in walk(root, exclude=[root / "out"])]
    assert found == [".hidden.wav", "a.wav", "dangling.wav", "linked/c.flac", "sub/b.txt"]


def test_generic_reasons(tmp_path: Path) -> None:
    _touch(tmp_path, ".DS_Store", "notes.txt", "README")
    os.symlink(tmp_path / "gone.wav", tmp_path / "dangling.wav")
    assert generic_reason(tmp_path / ".DS_Store") == "hidden file (name starts with '.')"
    assert generic_reason(tmp_path / "notes.txt").startswith("unsupported extension .txt (media: ")
    assert generic_reason(tmp_path / "README").startswith("unsupported extension (none)")
    assert generic_reason(tmp_path / "dangling.wav") == (
        f"dangling symbolic link (its target {tmp_path / 'gone.wav'} does not exist)"
    )


def test_account_counts_add_up_and_keep_the_first_reason(tmp_path: Path) -> None:
    files = [tmp_path / n for n in ("a.wav", "b.wav", "c.txt")]
    account = FileAccount.of_listing(
        tmp_path, files, used=[files[0], files[1]], refused={files[1]: "ignored: used"}
    )
    assert account.counts() == {"seen": 3, "kept": 2, "skipped": 1}
    account.skip(files[1], f"{files[1]}: silent audio")
    account.skip(files[1], f"{files[1]}: a later reason")
    assert account.lines() == [
        f"{files[1]}: silent audio",
        f"{files[2]}: " + generic_reason(files[2]),
    ]
    assert account.counts() == {"seen": 3, "kept": 1, "skipped": 2}
    assert account.summary() == f"{tmp_path}: 3 file(s) seen = 1 kept + 2 skipped"
    lines = ["x: speaker A not selected (why)", "y: silent audio", "z: speaker B not selected (w)"]
    assert printable(lines) == [
        "y: silent audio",
        "2 file(s) of speakers not selected (listed in the report)",
    ]


def test_adapters_give_each_refused_file_its_reason(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "Actor_01/03-01-05-01-01-01-01.flac",
        "Actor_01/02-01-05-01-01-01-01.mp4",
        "Actor_01/03-01-05-01-01-01-01-copy.flac",
        "Actor_01/readme.txt",
    )
    corpus = list_corpus("ravdess", tmp_path, "audio")
    assert [i.clip_id for i in corpus.items] == ["Actor_01/03-01-05-01-01-01-01"]
    folder = tmp_path / "Actor_01"
    assert corpus.account.lines() == [
        f"{folder / '02-01-05-01-01-01-01.mp4'}: RAVDESS video-only file, not used for audio",
        f"{folder / '03-01-05-01-01-01-01-copy.flac'}: name does not follow the RAVDESS naming "
        "MM-VV-EE-II-SS-RR-AA",
        f"{folder / 'readme.txt'}: " + generic_reason(folder / "readme.txt"),
    ]
    assert corpus.account.counts() == {"seen": 4, "kept": 1, "skipped": 3}


def test_csv_corpus_lists_unlisted_files_and_the_sheet(tmp_path: Path) -> None:
    _touch(tmp_path, "a.wav", "b.wav", "extra.wav")
    (tmp_path / "data.csv").write_text("a.wav,happy,s1\nb.wav,sad,s2\n")
    corpus = list_corpus("csv", tmp_path)
    corpus.select(["s1"], None, "--speakers")
    assert corpus.account.lines() == [
        f"{tmp_path / 'b.wav'}: speaker s2 not selected (--speakers)",
        f"{tmp_path / 'data.csv'}: the corpus's label sheet (read for the labels, not a clip)",
        f"{tmp_path / 'extra.wav'}: not listed in data.csv",
    ]
    assert corpus.account.kept == [str(tmp_path / "a.wav")]
