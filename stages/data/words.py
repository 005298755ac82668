"""Text length in words, the same measure for every writing system.

A word is a run of letters or digits between spaces or punctuation, except that each Chinese (Han),
Japanese (Hiragana, Katakana) or Korean (Hangul) character is a word of its own: those scripts write
without spaces, so a run-based count would call a whole Chinese sentence one word, and a character
count would call an 8-character Chinese saying as short as "Hi there". "塞翁失马，焉知非福" is 8 words,
"Shares fell sharply" 3, "GPU 很快" 3. clean's `min_words` uses it.
"""

from __future__ import annotations

import re

# Han (CJK unified ideographs, extensions A-H, compatibility), Hiragana, Katakana (full and half width),
# Hangul syllables and jamo
_CJK = (
    "\u1100-\u11ff\u3040-\u30ff\u31f0-\u31ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
    "\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
_WORD = re.compile(f"[{_CJK}]|[^\\W{_CJK}]+")


def count_words(text: str) -> int:
    """Words in `text`: runs of letters/digits, each CJK character counted as one word."""
    return len(_WORD.findall(text))
