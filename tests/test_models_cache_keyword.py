"""The KV-cache keyword: transformers renamed ``past_key_values`` to ``cache`` (the old name is
removed in 5.40); vniahd passes whichever name the installed text model declares, and a cache
passed under the declared name is really filled (a name the forward does not declare would land in
its ``**kwargs`` and be ignored without a word)."""

from __future__ import annotations

import pytest
import torch
from model_helpers import FAMILY_SPECS

from vniahd.errors import VniahdError
from vniahd.models import get_backend
from vniahd.models.base import cache_keyword, cache_kwargs


@pytest.mark.parametrize("family", sorted(FAMILY_SPECS))
def test_every_family_fills_the_cache_it_is_given(family):
    be = get_backend(FAMILY_SPECS[family])
    assert cache_keyword(be.language_model) == "cache"  # transformers 5.24, the pinned floor
    cache = be.new_cache()
    emb = be.embed_text(list(range(40, 49)))[None]
    pos = torch.arange(9.0).expand(3, 1, 9)
    with torch.inference_mode():
        whole = be.hidden_states(emb, pos)
        be.hidden_states(emb[:, :5], pos[..., :5], cache=cache)
        assert cache.get_seq_length() == 5
        rest = be.hidden_states(emb[:, 5:], pos[..., 5:], cache=cache)
    assert cache.get_seq_length() == 9
    # the continuation saw the cached prefix: equal to the one-pass states of those rows
    torch.testing.assert_close(rest[0], whole[0, 5:], atol=1e-5, rtol=0)


def test_old_name_and_no_name():
    class Old(torch.nn.Module):
        def forward(self, inputs_embeds=None, past_key_values=None, use_cache=None, **kwargs):
            return past_key_values

    class Neither(torch.nn.Module):
        def forward(self, inputs_embeds=None, **kwargs):
            return None

    assert cache_kwargs(Old(), "C") == {"past_key_values": "C", "use_cache": True}
    assert cache_kwargs(Old(), None) == {"past_key_values": None, "use_cache": False}
    with pytest.raises(VniahdError, match="neither cache nor past_key_values"):
        cache_keyword(Neither())
