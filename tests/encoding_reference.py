"""The windowing encoder as it was before issue 13, and varied texts to hold the bounded one against it.

The old encoder tokenized every text whole, then truncated the Encoding and, under `head+tail`, merged
two Encodings (memory quadratic in the text). It is kept here only as the reference: the bounded
encoder (`WindowEncoder` in `stages/serving/textclf.py`, the served model's, which the tokenize stage
uses too) must give the same windows and counts for every ordinary text (the committed pipeline outputs
must not change). Call it only on short texts.
"""

from __future__ import annotations

import copy
import random
from typing import Any

# words with what tokenizers treat specially: punctuation, accents, ligatures, full-width and CJK
# characters, digits, currency, hyphens, apostrophes, words out of any small vocabulary
WORDS = [
    *"market shares profit bank economy team goal coach chip data phone the a of and to in said".split(),
    "Bank's",
    "economy,",
    "café",
    "naïve",
    "São",
    "2,000",
    "£1m",
    "(BBC)",
    "e-mail",
    "U.S.",
    "don't",
    "北京市",
    "ﬁnance",
    "Ｆｕｌｌ",
    "zyxwvut",
    "...",
    '"quoted"',
    "Schadenfreude",
]
SEPARATORS = [" ", " ", " ", "  ", "\n", ", "]


def varied_texts(seed: int, word_counts: list[int]) -> list[str]:
    """One text per count: that many words drawn from `WORDS`, joined by varied whitespace and commas."""
    rng = random.Random(seed)
    out = []
    for n in word_counts:
        parts = []
        for _ in range(n):
            parts += [rng.choice(WORDS), rng.choice(SEPARATORS)]
        out.append("".join(parts[:-1]) + rng.choice(["", ".", " ", "\n"]))
    return out


def around(text: str, lengths: list[int]) -> list[str]:
    """`text` cut to each of `lengths` characters (some cuts fall inside a word)."""
    return [text[:n] for n in lengths]


def old_split_windows(enc: Any, budget: int) -> list[Any]:
    n = len(enc.ids)
    if n <= budget:
        return [enc]
    size = -(-n // -(-n // budget))
    enc.truncate(size, direction="right")
    return [enc, *enc.overflowing]


def old_encode_batch(
    tok: Any, texts: list[str], max_length: int, windows: int, truncation: str, head_fraction: float
) -> dict[str, list[Any]]:
    """stages/tokenize.py `encode_batch` before issue 13, verbatim but for the params object."""
    from tokenizers import Encoding

    backend = copy.deepcopy(tok.backend_tokenizer)
    backend.no_truncation()
    backend.no_padding()
    specials = tok.num_special_tokens_to_add(pair=False)
    window_budget = max_length - specials
    budget = window_budget * windows
    raw = backend.encode_batch(texts, add_special_tokens=False)
    want_types = "token_type_ids" in tok.model_input_names
    keys = ["input_ids", "attention_mask", "n_tokens", "n_unk", "truncated", "windows", "n_windows"]
    if want_types:
        keys += ["token_type_ids", "window_type_ids"]
    out: dict[str, list[Any]] = {k: [] for k in keys}
    unk = tok.unk_token_id
    for text, enc in zip(texts, raw, strict=True):
        n = len(enc.ids)
        out["n_unk"].append(0 if unk is None else enc.ids.count(unk))
        out["truncated"].append(n > budget)
        if n > budget:
            if truncation == "head":
                enc.truncate(budget, direction="right")
            elif truncation == "tail":
                enc.truncate(budget, direction="left")
            else:
                head_n = max(1, int(budget * head_fraction))
                tail = backend.encode(text, add_special_tokens=False)
                enc.truncate(head_n, direction="right")
                tail.truncate(budget - head_n, direction="left")
                enc = Encoding.merge([enc, tail], growing_offsets=True)
        wins = [backend.post_process(w, None, True) for w in old_split_windows(enc, window_budget)]
        first = wins[0]
        out["input_ids"].append(first.ids)
        out["attention_mask"].append(first.attention_mask)
        out["windows"].append([w.ids for w in wins])
        out["n_windows"].append(len(wins))
        if want_types:
            out["token_type_ids"].append(first.type_ids)
            out["window_type_ids"].append([w.type_ids for w in wins])
        out["n_tokens"].append(n + specials)
    return out


class SpyTokenizer:
    """A tokenizer whose backend checks the length of every text handed to it.

    `whole_limit` bounds the texts of `encode_batch` (the tokenize stage reads each text whole once, to
    count its tokens), `limit` every other text. Too long a text fails at once, before the old encoder
    could start its quadratic merge.
    """

    def __init__(self, tok: Any, limit: int, whole_limit: int | None = None) -> None:
        self._tok, self.limit, self.whole_limit = tok, limit, whole_limit or limit
        self.lengths: list[int] = []

    @property
    def backend_tokenizer(self) -> Any:
        return _SpyBackend(self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tok, name)

    def check(self, texts: list[str], limit: int) -> None:
        for t in texts:
            self.lengths.append(len(t))
            assert len(t) <= limit, f"a text of {len(t)} characters reached the tokenizer (limit {limit})"


class _SpyBackend:
    def __init__(self, owner: SpyTokenizer) -> None:
        self.owner, self.real = owner, copy.deepcopy(owner._tok.backend_tokenizer)

    def __deepcopy__(self, memo: dict) -> _SpyBackend:
        return self

    def encode(self, text: str, *args: Any, **kw: Any) -> Any:
        self.owner.check([text], self.owner.limit)
        return self.real.encode(text, *args, **kw)

    def encode_batch(self, texts: list[str], *args: Any, **kw: Any) -> Any:
        self.owner.check(list(texts), self.owner.whole_limit)
        return self.real.encode_batch(texts, *args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)
