"""Lexical diversity and readability of a generated text, as LLM-written reports are compared by.

- Type-token ratio (TTR): distinct words / words. Simple but falls with length, so we also give
- MTLD (McCarthy & Jarvis 2010): the mean length of word runs whose running TTR stays above 0.72,
  averaged over a forward and a backward pass; roughly length-independent.
- Flesch reading ease: 206.835 - 1.015 (words/sentence) - 84.6 (syllables/word); higher = easier
  (60-70 plain English, under 30 academic).
- Flesch-Kincaid grade: 0.39 (words/sentence) + 11.8 (syllables/word) - 15.59 (US school grade).

Syllables are counted with the usual vowel-group heuristic (no dictionary, deterministic). Numbers are
words for TTR/MTLD and count one syllable per digit group; decimal points do not end sentences.
"""

from __future__ import annotations

import re

WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*|\d+(?:[.,]\d+)*")
SENTENCE_END = re.compile(r"(?<!\d)[.!?]+(?=\s|$)|(?<=\d)[.!?]+(?=\s+[A-Z]|\s*$)")
MTLD_THRESHOLD = 0.72


def words(text: str) -> list[str]:
    """Lower-cased word tokens (markdown markup and punctuation dropped)."""
    return [w.lower() for w in WORD.findall(re.sub(r"[*_`#|>]", " ", text))]


def sentence_count(text: str) -> int:
    """Sentences = sentence-final punctuation marks (at least 1 for a non-empty text); table rows and
    headings without a full stop count as one sentence each."""
    count = 0
    for line in text.splitlines():
        line = line.strip()
        if not line or set(line) <= set("|-: "):
            continue
        n = len(SENTENCE_END.findall(line))
        count += n if n else 1
    return max(count, 1 if words(text) else 0)


def syllables(word: str) -> int:
    """Vowel groups, minus a silent final 'e', at least 1."""
    w = word.lower()
    if w[0].isdigit():
        return 1
    groups = re.findall(r"[aeiouy]+", w)
    n = len(groups)
    if w.endswith("e") and not w.endswith(("le", "ee", "ye")) and n > 1:
        n -= 1
    return max(1, n)


def _mtld_pass(tokens: list[str]) -> float:
    factors, types, count = 0.0, set(), 0
    for tok in tokens:
        count += 1
        types.add(tok)
        if len(types) / count <= MTLD_THRESHOLD:
            factors += 1
            types, count = set(), 0
    if count:
        ttr = len(types) / count
        factors += (1 - ttr) / (1 - MTLD_THRESHOLD)
    return len(tokens) / factors if factors > 0 else float(len(tokens))


def mtld(tokens: list[str]) -> float:
    """MTLD (forward/backward mean); for texts under ~50 words it is unstable, so report the word count too."""
    if not tokens:
        return 0.0
    return (_mtld_pass(tokens) + _mtld_pass(tokens[::-1])) / 2


def text_stats(text: str) -> dict:
    """{words, sentences, type_token_ratio, mtld, flesch_reading_ease, flesch_kincaid_grade}."""
    toks = words(text)
    n_words = len(toks)
    n_sent = sentence_count(text)
    if n_words == 0:
        return {"words": 0, "sentences": 0, "type_token_ratio": 0.0, "mtld": 0.0,
                "flesch_reading_ease": 0.0, "flesch_kincaid_grade": 0.0}
    syl = sum(syllables(w) for w in toks)
    wps, spw = n_words / n_sent, syl / n_words
    return {
        "words": n_words,
        "sentences": n_sent,
        "type_token_ratio": round(len(set(toks)) / n_words, 4),
        "mtld": round(mtld(toks), 2),
        "flesch_reading_ease": round(206.835 - 1.015 * wps - 84.6 * spw, 2),
        "flesch_kincaid_grade": round(0.39 * wps + 11.8 * spw - 15.59, 2),
    }
