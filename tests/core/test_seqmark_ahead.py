"""The seq ceiling is reserved ahead on a thread of its own, and never behind: every seq handed out is
under the ceiling already on disk (fsynced), with no temporary file left at close."""

from __future__ import annotations

from pathlib import Path

from gateway.seqmark import BLOCK, SeqMark


def test_every_seq_is_under_the_ceiling_on_disk_and_the_next_block_is_reserved_ahead(tmp_path: Path) -> None:
    mark = SeqMark(tmp_path / "g.db")
    on_disk = tmp_path / "g.db.seq-reserved"
    for seq in range(1, 4 * BLOCK + 1):
        mark.reserve(seq)
        assert int(on_disk.read_text().split()[0]) >= seq   # before the seq is used
        assert mark.reserved >= seq
    mark.close()   # waits for a reservation under way
    assert mark.reserved >= 4 * BLOCK + BLOCK // 2   # the next block was taken ahead, past half of this one
    assert int(on_disk.read_text().split()[0]) == mark.reserved
    assert not list(tmp_path.glob("*.tmp"))


def test_a_jump_past_the_ceiling_waits_and_reserves_itself(tmp_path: Path) -> None:
    mark = SeqMark(tmp_path / "g.db")
    mark.reserve(1)
    mark.reserve(10 * BLOCK)   # e.g. seq continuing above a high-water mark
    assert int((tmp_path / "g.db.seq-reserved").read_text().split()[0]) >= 10 * BLOCK
    mark.close()
