"""The LOGBOOK holds only numbers its results files give: every generated block equals what its
generator writes from results/, no table row or figure caption outside a block holds a number,
and committed results name no machine's folders."""
import re
import subprocess

import pytest

from flow.labs.logbook import LOGBOOK, PENDING, REGISTRY, blocks, generate
from flow.labs.logbook.blocks import _load_generators, stale_blocks, unchecked_numbers
from flow.paths import REPO_ROOT

TEXT = LOGBOOK.read_text()


def test_every_block_equals_what_its_results_files_give():
    assert stale_blocks(TEXT) == [], "regenerate with: python -m flow.labs.logbook --write"


def test_no_table_or_caption_number_outside_a_generated_block():
    assert unchecked_numbers(TEXT) == []


def test_every_block_has_a_generator_and_every_generator_a_block():
    _load_generators()
    names = [b.name for b in blocks(TEXT)]
    assert len(names) == len(set(names))
    assert sorted(names) == sorted(REGISTRY)


def test_no_block_is_pending():
    assert PENDING == {}  # every block has its results file


def test_a_changed_table_number_is_caught():
    (block,) = [b for b in blocks(TEXT) if b.name == "lab2.samplers"]
    first = re.search(r"0\.\d{3}", block.body).group()
    changed = block.body.replace(first, f"{float(first) + 0.001:.3f}", 1)
    assert changed != block.body
    edited = TEXT[:block.start] + TEXT[block.start:block.end].replace(block.body, changed) + TEXT[block.end:]
    assert stale_blocks(edited) == ["lab2.samplers"]


def test_a_table_or_caption_number_outside_a_block_is_caught():
    edited = TEXT + "\n| format | accuracy |\n|---|---|\n| fixed | 0.8147 |\n\n![best of 3 seeds](x.png)\n"
    found = unchecked_numbers(edited)
    assert [line.split(": ", 1)[1] for line in found] == ["| fixed | 0.8147 |", "![best of 3 seeds](x.png)"]
    assert unchecked_numbers(TEXT + "\n| a | b |\n|---|---|\n![plot](results/lab1/x.png)\n") == []


def test_an_unregistered_block_is_a_one_line_error():
    with pytest.raises(ValueError, match="LOGBOOK block 'lab9.table' has no generator; register one"):
        generate("lab9.table")


def test_committed_results_name_no_machine_folders():
    tracked = subprocess.run(["git", "ls-files", "results"], cwd=REPO_ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert tracked, "no tracked results files found"
    pattern = re.compile(rb"/(work|home|tmp|root)/")
    assert [name for name in tracked if pattern.search((REPO_ROOT / name).read_bytes())] == []
