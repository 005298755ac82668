"""One stand-in champion for every monitor test (training it takes seconds)."""

from __future__ import annotations

import pytest

from tests.flows.commands.monitor.support import World, build_world


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("champion-tokenizer"))
