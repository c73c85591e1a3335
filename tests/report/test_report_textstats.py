"""Lexical diversity and readability on texts whose values can be worked out by hand."""

from __future__ import annotations

import pytest
from voxcause.report.textstats import mtld, sentence_count, syllables, text_stats, words


def test_counts_on_a_hand_checked_text():
    text = "The cat sat on the mat. The dog ran."
    st = text_stats(text)
    assert st["words"] == 9 and st["sentences"] == 2
    assert st["type_token_ratio"] == pytest.approx(7 / 9, abs=1e-4)
    # all words one syllable: 206.835 - 1.015 * 4.5 - 84.6 * 1 = 117.67; grade 0.39 * 4.5 + 11.8 - 15.59
    assert st["flesch_reading_ease"] == pytest.approx(117.67, abs=0.01)
    assert st["flesch_kincaid_grade"] == pytest.approx(-2.035, abs=0.01)


def test_decimals_do_not_end_sentences_and_syllables():
    assert sentence_count("The score is 0.93. It fell to 0.21.") == 2
    assert words("A 36.0 ml region.") == ["a", "36.0", "ml", "region"]
    assert [syllables(w) for w in ("region", "the", "table", "hippocampus", "36")] == [2, 1, 2, 4, 1]


def test_mtld_falls_with_repetition():
    greek = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi"
    varied = greek.split()
    repetitive = ("the region the region the region the region " * 2).split()
    assert mtld(varied) == 16.0  # never drops below 0.72: one partial factor of 0 -> the length
    assert mtld(repetitive) == pytest.approx(3.2)
    assert mtld([]) == 0.0
