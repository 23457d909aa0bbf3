"""Model cards are made of shared blocks: each family's template writes only its own text, and rewording a shared
section changes every family's card the same way (no template is cut out of another at a sentence)."""

import pytest

from cyclegan_hub.models import cards, cyclegan


def templates():
    found = [cyclegan.MODEL_CARD_TEMPLATE]
    turbo = pytest.importorskip("cyclegan_hub.models.turbo")
    return found + [turbo.MODEL_CARD_TEMPLATE]


def test_every_familys_card_is_built_from_the_shared_blocks():
    for template in templates():
        assert template.startswith(cards.FRONT_MATTER) and template.endswith(cards.SECTIONS)
        for block in (cards.SAMPLE, cards.INSTALL, cards.MODEL_TABLE):
            assert template.count(block) == 1
