"""The label fold, shared by label and clean.

label canonicalises every row's label with `canonical` (whitespace and, with `label.lowercase`, case
folded, then mapped through `label.aliases`); clean judges two copies of one text to conflict only when
their labels still differ after this same fold, so "Sport" and "sport" on one text are a duplicate, not a
conflict. clean reads the `label` section the one way a stage reads another's (stages/config/params.py):
`load_section("label", LabelParams, path)`, tracking `label.lowercase` and `label.aliases` in dvc.yaml.
"""

from __future__ import annotations

import re

from stages.config.label import LabelParams

_WS = re.compile(r"\s+")


def canonical(label: str, p: LabelParams) -> str:
    """Fold whitespace (and case), then map through the aliases (whose keys are folded the same way)."""
    folded = _WS.sub(" ", str(label)).strip()
    if p.lowercase:
        folded = folded.lower()
    aliases = {
        _WS.sub(" ", k).strip().lower() if p.lowercase else _WS.sub(" ", k).strip(): v
        for k, v in p.aliases.items()
    }
    return aliases.get(folded, folded)
