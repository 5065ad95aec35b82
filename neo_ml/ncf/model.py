"""Neural Collaborative Filtering models (He et al. 2017), with an optional recent-history user tower.

Every model returns logits from ``forward``; ``predict`` applies the sigmoid
the seed draws at the output. Rank with logits: a sigmoid saturates at 1.0 in
float32 and turns confident items into ties.

``history_length > 0`` adds, to each user embedding, the mean embedding of the
user's last ``history_length`` items before the moment scored (FPMC/SVD++ in
spirit). MovieLens users rate in bursts, so the latest items say much about the
next one: on NCF-LOO this lifts HR@10 by about 0.1 (see the README's table).
History rows are item indices padded with ``num_items``, latest first.

``SASRec`` (Kang & McAuley 2018) reads the user from their history alone:
causal self-attention over their latest ``history_length`` items plus a
long-term taste over their latest ``taste_length`` (SVD++'s implicit term),
trained to predict the next item at every position against the whole
catalogue (or sampled items where it is large). It needs no user id, so a
reader the checkpoint never saw is served from their interactions.
"""

from __future__ import annotations

import inspect
import math

import torch
from torch import nn


def _embedding(count: int, dim: int, padding_idx: int | None = None) -> nn.Embedding:
    layer = nn.Embedding(count, dim, padding_idx=padding_idx)
    nn.init.normal_(layer.weight, std=0.01)
    if padding_idx is not None:
        with torch.no_grad():
            layer.weight[padding_idx].zero_()
    return layer


def _mlp(input_dim: int, hidden_layers, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden_layers:
        layers += [nn.Linear(input_dim, width), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        input_dim = width
    return nn.Sequential(*layers)


class UserTower(nn.Module):
    """A user's vector: their own embedding, plus the mean embedding of their recent items."""

    def __init__(self, num_users: int, num_items: int, dim: int, history_length: int):
        super().__init__()
        self.user = _embedding(num_users, dim)
        self.history = _embedding(num_items + 1, dim, padding_idx=num_items) if history_length else None

    def forward(self, users: torch.Tensor, history: torch.Tensor | None) -> torch.Tensor:
        vector = self.user(users)
        if self.history is not None and history is not None:
            # One fused op: the mean over each row's items, padding left out.
            vector = vector + nn.functional.embedding_bag(
                history, self.history.weight, mode="mean", padding_idx=self.history.padding_idx,
                sparse=self.history.sparse)
        return vector


class _Scorer(nn.Module):
    """Shared face of the models: user vectors first, then item scores against them.

    Subclasses define ``user_vectors`` (a tuple of tensors, one row per user)
    and ``score`` (logits for user-vector rows against items).
    """

    num_users: int
    num_items: int
    history_length: int
    sequence_model = False  # True: trained on item sequences (``sequence_loss``), not on (user, item) pairs

    def _init_sizes(self, num_users: int, num_items: int, history_length: int) -> None:
        self.num_users, self.num_items, self.history_length = num_users, num_items, history_length

    def forward(self, users, items, history=None) -> torch.Tensor:
        return self.score(self.user_vectors(users, history), items)

    # Two-stage recommendation (``ncf.retrieval``): the items whose inner product with a user's
    # query is high are the candidates the full model then scores. Each architecture defines
    # ``retrieval_items()`` (one row per item) and ``retrieval_queries(user vectors, near)``,
    # ``near`` optional item indices per user around which an approximate query is taken.
    item_prior: torch.Tensor | None = None
    retrieval_is_exact = False  # True where the query's inner product is the score itself (GMF)
    lowers_read_items = False  # True where the score is the inner product less a penalty on the items read

    def set_item_prior(self, counts) -> None:
        """Weights of the items (training interactions) for the MLP side's linearisation point.

        The point is the prior-weighted mean item: where the items users actually take
        lie. The plain mean is pulled towards the many rarely seen items, far from any
        user's best: there the estimate found 84 % of the exact top 10 of a 100k-item
        catalogue in 2,000 candidates, against 100 % in 500 at the weighted mean.
        """
        weights = torch.as_tensor(counts, dtype=torch.float32).clamp(min=0)
        self.item_prior = weights / weights.sum() if weights.sum() > 0 else None
        self._item_projection = None

    def predict(self, users, items, history=None) -> torch.Tensor:
        return torch.sigmoid(self(users, items, history))

    @torch.no_grad()
    def score_all_items(self, users: torch.Tensor, history: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of every item for each user: shape (len(users), num_items)."""
        n = self.num_items
        vectors = tuple(v.repeat_interleave(n, dim=0) for v in self.user_vectors(users, history))
        items = torch.arange(n, device=users.device).repeat(len(users))
        return self.score(vectors, items).view(len(users), n)

    # The first MLP layer is W [u; i] = W_u u + W_i i. For scoring every item, W_i i is the same
    # for every user, so it is computed once per set of weights (cleared by train() and loading).
    def train(self, mode: bool = True):
        self._item_projection = None
        return super().train(mode)

    def load_state_dict(self, *args, **kwargs):
        self._item_projection = None
        return super().load_state_dict(*args, **kwargs)

    def _projection(self, item_weight: torch.Tensor) -> torch.Tensor:
        """W_i i for every item: the item half of the first MLP layer (cached)."""
        if getattr(self, "_item_projection", None) is None or self.training:
            self._item_projection = item_weight @ self.mlp[0].weight[:, item_weight.shape[1]:].T
            prior = self.item_prior
            self._mean_projection = (self._item_projection.mean(0) if prior is None
                                     else prior.to(item_weight.device) @ self._item_projection)
        return self._item_projection

    SCORE_CHUNK = 2**24  # hidden values per block when scoring every item (64 MB of float32)

    def _mlp_all_items(self, user_vectors: torch.Tensor, item_weight: torch.Tensor,
                       output_weight: torch.Tensor) -> torch.Tensor:
        """The MLP side's score of every (user, item) pair, shape (users, items).

        Blocks of users and items keep the (users, items, width) hidden values
        within ``SCORE_CHUNK``: a million items would otherwise need 0.5 GB per user.
        """
        first, dim = self.mlp[0], user_vectors.shape[1]
        projection = self._projection(item_weight)
        user_part = user_vectors @ first.weight[:, :dim].T + first.bias
        items, width = projection.shape
        item_step = max(1, min(items, self.SCORE_CHUNK // width))
        user_step = max(1, self.SCORE_CHUNK // (item_step * width))
        scores = user_part.new_empty(len(user_part), items)
        for u in range(0, len(user_part), user_step):
            for i in range(0, items, item_step):
                hidden = self.mlp[1:](projection[i:i + item_step].unsqueeze(0)
                                      + user_part[u:u + user_step].unsqueeze(1))
                scores[u:u + user_step, i:i + item_step] = hidden @ output_weight
        return scores

    def _mlp_queries(self, user_vectors: torch.Tensor, item_weight: torch.Tensor,
                     output_weight: torch.Tensor, near: torch.Tensor | None = None) -> torch.Tensor:
        """Per user, the gradient of the MLP side's score with respect to the item's projection W_i i,
        taken at the prior's mean item, or at the mean of the user's row of items ``near``. Its inner
        product with an item's projection is a first-order (Taylor) estimate of that item's MLP
        score, so the MLP side can be searched as an inner product too."""
        first, dim = self.mlp[0], user_vectors.shape[1]
        projection = self._projection(item_weight)
        at = self._mean_projection if near is None else projection[near].mean(1)
        point = (user_vectors @ first.weight[:, :dim].T + first.bias + at).detach()
        with torch.enable_grad():
            point.requires_grad_(True)
            (gradient,) = torch.autograd.grad((self.mlp[1:](point) @ output_weight).sum(), point)
        return gradient


class NCFModel(_Scorer):
    """The seed's MLP: user and item embeddings, concatenated, a ReLU tower, one output."""

    def __init__(self, num_users: int, num_items: int, embedding_dim: int = 64,
                 hidden_layers=(128, 64, 32), dropout: float = 0.0, history_length: int = 0):
        super().__init__()
        self._init_sizes(num_users, num_items, history_length)
        self.user_tower = UserTower(num_users, num_items, embedding_dim, history_length)
        self.item_embedding = _embedding(num_items, embedding_dim)
        self.mlp = _mlp(2 * embedding_dim, hidden_layers, dropout)
        self.output = nn.Linear(list(hidden_layers)[-1], 1)

    def user_vectors(self, users, history=None):
        return (self.user_tower(users, history),)

    def score(self, vectors, items) -> torch.Tensor:
        x = torch.cat([vectors[0], self.item_embedding(items)], dim=-1)
        return self.output(self.mlp(x)).squeeze(-1)

    @torch.no_grad()
    def score_all_items(self, users, history=None) -> torch.Tensor:
        return self._mlp_all_items(self.user_vectors(users, history)[0], self.item_embedding.weight,
                                   self.output.weight[0]) + self.output.bias

    def retrieval_items(self) -> torch.Tensor:
        return self._projection(self.item_embedding.weight)

    def retrieval_queries(self, vectors, near=None) -> torch.Tensor:
        return self._mlp_queries(vectors[0], self.item_embedding.weight, self.output.weight[0], near)


class GMF(_Scorer):
    """Generalised matrix factorisation: a weighted dot product of embeddings."""

    def __init__(self, num_users: int, num_items: int, embedding_dim: int = 64,
                 history_length: int = 0):
        super().__init__()
        self._init_sizes(num_users, num_items, history_length)
        self.user_tower = UserTower(num_users, num_items, embedding_dim, history_length)
        self.item_embedding = _embedding(num_items, embedding_dim)
        self.output = nn.Linear(embedding_dim, 1)

    def user_vectors(self, users, history=None):
        return (self.user_tower(users, history),)

    def score(self, vectors, items) -> torch.Tensor:
        return self.output(vectors[0] * self.item_embedding(items)).squeeze(-1)

    def retrieval_items(self) -> torch.Tensor:
        return self.item_embedding.weight  # exact: the score is this inner product plus a bias

    retrieval_is_exact = True

    def retrieval_queries(self, vectors, near=None) -> torch.Tensor:
        return vectors[0] * self.output.weight[0]  # exact, wherever it is taken


class NeuMF(_Scorer):
    """GMF and MLP side by side with separate embeddings, fused by one output layer."""

    def __init__(self, num_users: int, num_items: int, embedding_dim: int = 64,
                 hidden_layers=(128, 64, 32), dropout: float = 0.0, gmf_dim: int | None = None,
                 history_length: int = 0):
        super().__init__()
        self._init_sizes(num_users, num_items, history_length)
        gmf_dim = gmf_dim or embedding_dim
        self.gmf_user = UserTower(num_users, num_items, gmf_dim, history_length)
        self.gmf_item = _embedding(num_items, gmf_dim)
        self.mlp_user = UserTower(num_users, num_items, embedding_dim, history_length)
        self.mlp_item = _embedding(num_items, embedding_dim)
        self.mlp = _mlp(2 * embedding_dim, hidden_layers, dropout)
        self.output = nn.Linear(gmf_dim + list(hidden_layers)[-1], 1)

    def user_vectors(self, users, history=None):
        return self.gmf_user(users, history), self.mlp_user(users, history)

    def score(self, vectors, items) -> torch.Tensor:
        gmf = vectors[0] * self.gmf_item(items)
        mlp = self.mlp(torch.cat([vectors[1], self.mlp_item(items)], dim=-1))
        return self.output(torch.cat([gmf, mlp], dim=-1)).squeeze(-1)

    # The GMF side is an inner product; the MLP side is estimated to first order (``_mlp_queries``).
    def retrieval_items(self) -> torch.Tensor:
        return torch.cat([self.gmf_item.weight, self._projection(self.mlp_item.weight)], dim=1)

    def retrieval_queries(self, vectors, near=None) -> torch.Tensor:
        weight, dim = self.output.weight[0], vectors[0].shape[1]
        return torch.cat([vectors[0] * weight[:dim],
                          self._mlp_queries(vectors[1], self.mlp_item.weight, weight[dim:], near)], dim=1)

    @torch.no_grad()
    def score_all_items(self, users, history=None) -> torch.Tensor:
        gmf_user, mlp_user = self.user_vectors(users, history)
        weight, dim = self.output.weight[0], gmf_user.shape[1]
        gmf = (gmf_user * weight[:dim]) @ self.gmf_item.weight.T
        mlp = self._mlp_all_items(mlp_user, self.mlp_item.weight, weight[dim:])
        return gmf + mlp + self.output.bias


class SASRec(_Scorer):
    """Self-attentive sequential recommendation: a user is the attention over their item sequence.

    The score of an item is the inner product of the user's vector with the
    item's embedding (shared by input and output), less a learned penalty if
    the item is among those read (``repeat_penalty``): the residual stream
    carries each input item's own embedding, so without it the latest item read
    is in the model's top 10 for 96 % of MovieLens users (median: first).

    The user's vector is the last position's output of causal self-attention
    over their latest ``history_length`` items, plus a **long-term taste**
    (``taste_length``): the sum of a second item table over their latest
    ``taste_length`` items, divided by the square root of their count (the
    implicit-feedback term of SVD++, Koren 2008). It reaches past the attention
    window and, unlike a user id vector, a newcomer has it too. The model reads
    ``max(history_length, taste_length)`` items (its ``history_length``).
    Retrieval over large catalogues stays exact (the search fetches as many
    more candidates as items read). ``user_embedding`` adds a user id vector,
    which a user unknown to the checkpoint simply lacks (index ``num_users``).

    ``text_dim`` adds a **text path** for the items without an id vector
    (``has_id`` false: no training interactions, or a resource added after
    training): such an item's vector, input and output alike, is a small MLP
    of its sentence embedding (``set_item_text``); an item with an id vector
    keeps it, so warm figures are those of the model without text. The MLP is
    fitted after training, against the frozen model (``ncf.text_path``).
    """

    sequence_model = True
    retrieval_is_exact = True

    def __init__(self, num_users: int, num_items: int, embedding_dim: int = 64, history_length: int = 50,
                 dropout: float = 0.2, num_blocks: int = 2, num_heads: int = 1, user_embedding: bool = False,
                 repeat_penalty: bool = True, user_dropout: float = 0.0, taste_length: int = 0,
                 taste_dropout: float = 0.0, text_dim: int = 0):
        super().__init__()
        self._init_sizes(num_users, num_items, max(history_length, taste_length))
        self.attention_length = history_length
        self.item_embedding = _embedding(num_items + 1, embedding_dim, padding_idx=num_items)
        nn.init.normal_(self.item_embedding.weight, std=embedding_dim ** -0.5)  # the published figures' draws
        with torch.no_grad():
            self.item_embedding.weight[num_items].zero_()
        self.position = nn.Embedding(history_length, embedding_dim)
        self.user = _embedding(num_users + 1, embedding_dim, padding_idx=num_users) if user_embedding else None
        self.taste = _embedding(num_items + 1, embedding_dim, padding_idx=num_items) if taste_length else None
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(embedding_dim, num_heads, dim_feedforward=embedding_dim, dropout=dropout,
                                       batch_first=True, norm_first=True) for _ in range(num_blocks))
        self.norm = nn.LayerNorm(embedding_dim)
        self.num_heads = num_heads
        self.user_dropout = user_dropout  # share of training windows read without their user id vector
        self.taste_dropout = taste_dropout  # share of the items left out of each training taste
        # exp(repeat) is subtracted from the score of each item the model reads in the history
        self.repeat = nn.Parameter(torch.zeros(())) if repeat_penalty else None
        self.text_projection = None
        if text_dim:
            self.add_text_path(text_dim)
        self._eval_table = None

    def add_text_path(self, text_dim: int) -> None:
        """An MLP from ``text_dim``-wide sentence embeddings to item vectors, 4x the embedding wide. On the
        new-resource protocol's validation users (seed 42), a linear projection ranked the new items a
        little higher (sampled HR@10 0.55 against 0.53) but cost the other users more (full HR@10 0.18
        against 0.21)."""
        width = self.item_embedding.embedding_dim
        self.text_projection = nn.Sequential(nn.Linear(text_dim, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        # filled by set_item_text; saved with the weights, so a checkpoint holds its texts' vectors
        self.register_buffer("item_text", torch.zeros(self.num_items + 1, text_dim))
        self.register_buffer("has_id", torch.ones(self.num_items + 1, dtype=torch.bool))
        self._eval_table = None

    def set_item_text(self, vectors, has_id) -> None:
        """Each item's sentence embedding, (num_items, text_dim), and whether it has an id vector (it has
        training interactions); a model built without ``text_dim`` has no text path."""
        if self.text_projection is None:
            raise ValueError("this model has no text path (text_dim 0)")
        with torch.no_grad():
            self.item_text[:self.num_items] = torch.as_tensor(vectors, dtype=torch.float32)
            self.has_id[:self.num_items] = torch.as_tensor(has_id, dtype=torch.bool)
            self.has_id[self.num_items] = False
        self._eval_table = None

    def train(self, mode: bool = True):
        self._eval_table = None
        return super().train(mode)

    def load_state_dict(self, *args, **kwargs):
        self._eval_table = None
        return super().load_state_dict(*args, **kwargs)

    def _table(self) -> torch.Tensor | None:
        """Every item's vector, the pad's (zero) last: its id vector where it has one, else its text's
        projection; None without a text path (the id embedding is the table). Evaluation computes it once
        per set of weights."""
        if self.text_projection is None:
            return None
        if not self.training and self._eval_table is not None:
            return self._eval_table
        with torch.inference_mode(False), torch.set_grad_enabled(self.training):
            table = torch.where(self.has_id.unsqueeze(-1), self.item_embedding.weight,
                                self.text_projection(self.item_text))
            table = table.index_fill(0, torch.tensor([self.num_items], device=table.device), 0.0)
        if not self.training:
            self._eval_table = table
        return table

    def _vectors(self, items: torch.Tensor, table: torch.Tensor | None) -> torch.Tensor:
        return self.item_embedding(items) if table is None else nn.functional.embedding(items, table)

    def _taste_items(self, sequences: torch.Tensor) -> torch.Tensor:
        """The items the taste reads: those with an id vector (an item without one has no taste row)."""
        if self.text_projection is None:
            return sequences
        return sequences.masked_fill(~self.has_id[sequences], self.num_items)

    @property
    def lowers_read_items(self) -> bool:
        return self.repeat is not None

    def _penalise_all(self, logits: torch.Tensor, read_items: torch.Tensor) -> torch.Tensor:
        """(rows, num_items) ``logits`` less the repeat penalty at each row's ``read_items`` (pads ignored).

        Only the read entries are touched, so the cost is the window's, not the catalogue's; an item read
        twice is written twice with the same value, penalised once."""
        if self.repeat is None:
            return logits
        rows, columns = (read_items != self.num_items).nonzero(as_tuple=True)
        where = (rows, read_items[rows, columns])
        return logits.index_put(where, logits[where] - self.repeat.exp())

    def _first_reads(self, rows: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(batch, k): where in each of the (batch, length) ``rows`` each of its (batch, k) ``items`` is first
        read (a binary search of the sorted row), ``length`` where it is not."""
        length = rows.shape[1]
        ordered, order = rows.sort(dim=1, stable=True)  # of equal items, the earliest first
        at = torch.searchsorted(ordered, items.contiguous()).clamp(max=length - 1)
        found = (ordered.gather(1, at) == items) & (items != self.num_items)
        return torch.where(found, order.gather(1, at), length)

    def _long_term_taste(self, sequences: torch.Tensor) -> torch.Tensor:
        """(batch, length, dim): at each position, the taste table summed over the items up to it, over
        the square root of their count."""
        sequences = self._taste_items(sequences)
        kept = sequences != self.num_items
        if self.training and self.taste_dropout:  # a taste is not a fingerprint of the readers trained on
            kept &= torch.rand(sequences.shape, device=sequences.device) >= self.taste_dropout
            sequences = sequences.masked_fill(~kept, self.num_items)
        count = kept.cumsum(1).clamp(min=1).unsqueeze(-1)
        return self.taste(sequences).cumsum(1) / count.sqrt()

    def _inputs(self, recent: torch.Tensor, first_position: int, table: torch.Tensor | None) -> torch.Tensor:
        """The blocks' input for (batch, length) items at positions ``first_position`` on: scaled item
        vectors (of ``table``, see ``_table``) plus positions, zero at pads."""
        positions = torch.arange(first_position, first_position + recent.shape[1], device=recent.device)
        x = (self._vectors(recent, table) * math.sqrt(self.item_embedding.embedding_dim)
             + self.position(positions))
        return self.dropout(x).masked_fill((recent == self.num_items).unsqueeze(-1), 0.0)

    @staticmethod
    def _attended(pad: torch.Tensor) -> torch.Tensor:
        """(batch, query, key), True where a query attends a key: itself and the real items before it (a pad
        attends itself alone, so that no row of the attention is empty)."""
        length = pad.shape[1]
        itself = torch.eye(length, dtype=torch.bool, device=pad.device)
        return (~pad.unsqueeze(1) | itself) & ~itself.new_ones(length, length).triu(1)

    def encode(self, sequences: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        """Outputs at each of the last ``attention_length`` positions of (batch, length) item sequences,
        oldest first, padded on the left with ``num_items``. A position attends to itself and the real
        items before it in the attention window, never a pad; its taste reads every item up to it.
        ``table``: the item vectors to read (default: ``_table()``'s)."""
        table = self._table() if table is None else table
        recent = sequences[:, -self.attention_length:]
        length = recent.shape[1]
        pad = recent == self.num_items
        x = self._inputs(recent, self.attention_length - length, table)
        blocked = ~self._attended(pad)  # (batch, query, key): True = not attended
        blocked = blocked.repeat_interleave(self.num_heads, dim=0)
        for block in self.blocks:
            x = block(x, src_mask=blocked).masked_fill(pad.unsqueeze(-1), 0.0)
        x = self.norm(x)
        if self.taste is not None:
            x = x + self._long_term_taste(sequences)[:, -length:]
        return x

    def encode_last(self, sequences: torch.Tensor) -> torch.Tensor:
        """``encode``'s output at the last position only, as serving and evaluation need it, in fewer ops.

        The same blocks' weights, applied by hand: pad columns on the left of every row are left out (a
        real position never attends a pad), the last block attends from the last position alone, and the
        taste is one sum. A single user's call is overhead-bound, so fewer and smaller ops are what count
        (recommend's encode: 0.37 ms to 0.27 ms median on one thread). Training keeps ``encode``."""
        if self.training:
            return self.encode(sequences)[:, -1]
        recent = sequences[:, -self.attention_length:]
        start = self.attention_length - recent.shape[1]  # position of the row's first column
        occupied = (recent != self.num_items).any(0)
        first = int(occupied.int().argmax()) if bool(occupied.any()) else recent.shape[1] - 1
        recent = recent[:, first:]
        pad = recent == self.num_items
        x = self._inputs(recent, start + first, self._table())
        allowed, pad = self._attended(pad), pad.unsqueeze(-1)
        for number, block in enumerate(self.blocks):
            if number == len(self.blocks) - 1:  # only the last position's output is wanted
                allowed, pad = allowed[:, -1:], pad[:, -1:]
            x = self._block(block, x, allowed).masked_fill(pad, 0.0)
        x = self.norm(x[:, -1])
        if self.taste is not None:
            tasted = self._taste_items(sequences)
            count = (tasted != self.num_items).sum(1, keepdim=True).clamp(min=1)
            x = x + nn.functional.embedding_bag(tasted, self.taste.weight, mode="sum",
                                                padding_idx=self.num_items) / count.sqrt()
        return x

    def _block(self, block: nn.TransformerEncoderLayer, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """A pre-norm encoder block in inference, for the queries of ``allowed`` (batch, queries, keys): the
        last ``queries`` positions of ``x``."""
        attention, heads = block.self_attn, self.num_heads
        batch, _, dim = x.shape
        queries = allowed.shape[1]

        def by_head(t: torch.Tensor) -> torch.Tensor:  # (batch, heads, positions, dim / heads)
            return t.reshape(batch, -1, heads, dim // heads).transpose(1, 2)

        q, k, v = nn.functional.linear(block.norm1(x), attention.in_proj_weight, attention.in_proj_bias).chunk(3, -1)
        mixed = nn.functional.scaled_dot_product_attention(by_head(q[:, -queries:]), by_head(k), by_head(v),
                                                           attn_mask=allowed.unsqueeze(1))
        x = x[:, -queries:] + attention.out_proj(mixed.transpose(1, 2).reshape(batch, queries, dim))
        return x + block.linear2(block.activation(block.linear1(block.norm2(x))))

    def user_vectors(self, users, history=None):
        if history is None:
            raise ValueError("SASRec reads a user from their history; none was given")
        with torch.inference_mode(not torch.is_grad_enabled()):  # serving: a fifth less time per call
            vector = self.encode_last(history.flip(1))  # history rows are latest first
        if self.user is not None:  # an unknown user (index >= num_users) gets the zero padding row
            vector = vector + self.user(torch.where(users < self.num_users, users, self.num_users))
        return (vector, history)

    def _items(self, table: torch.Tensor | None = None) -> torch.Tensor:
        """Every item's output vector (of ``table``, default ``_table()``'s; the id embedding without text)."""
        table = self._table() if table is None else table
        return (self.item_embedding.weight if table is None else table)[:self.num_items]

    def score(self, vectors, items) -> torch.Tensor:
        logits = (vectors[0] * self._vectors(items, self._table())).sum(-1)
        if self.repeat is None:
            return logits
        return logits - self.repeat.exp() * (items[:, None] == vectors[1]).any(1)

    @torch.no_grad()
    def score_all_items(self, users, history=None) -> torch.Tensor:
        vector, history = self.user_vectors(users, history)
        return self._penalise_all(vector @ self._items().T, history)

    def retrieval_items(self) -> torch.Tensor:
        return self._items()

    def retrieval_queries(self, vectors, near=None) -> torch.Tensor:
        return vectors[0]

    def sequence_loss(self, inputs: torch.Tensor, targets: torch.Tensor, negatives: torch.Tensor | None = None,
                      users: torch.Tensor | None = None) -> torch.Tensor:
        """Mean cross-entropy of the next item at every real position of (batch, length) windows (targets
        only in the attention window): against every item, or against ``negatives`` (item indices shared
        by the batch; a negative that is the target itself is left out)."""
        table = self._table()
        hidden = self.encode(inputs, table)
        if self.user is not None and users is not None:
            if self.training and self.user_dropout:  # as a newcomer: the padding row, a zero vector
                dropped = torch.rand(len(users), device=users.device) < self.user_dropout
                users = users.masked_fill(dropped, self.num_users)
            hidden = hidden + self.user(users).unsqueeze(1)
        offset = inputs.shape[1] - hidden.shape[1]  # where the attention window starts in the row
        targets = targets[:, offset:]
        window, in_window = (targets != self.num_items).nonzero(as_tuple=True)
        hidden, target = hidden[window, in_window], targets[window, in_window]
        position = (in_window + offset)[:, None]  # in the row: a read item at or before it is penalised
        if negatives is None:
            logits = hidden @ self._items(table).T
            if self.repeat is not None:  # only the read entries are touched, each item at its first read
                columns = torch.arange(inputs.shape[1], device=inputs.device)
                first = self._first_reads(inputs, inputs) == columns  # False for pads and repeats
                read = inputs[window]
                row, column = (first[window] & (columns <= position)).nonzero(as_tuple=True)
                logits = logits.index_put((row, read[row, column]), -self.repeat.exp().expand(len(row)),
                                          accumulate=True)
            return nn.functional.cross_entropy(logits, target)
        positive = (hidden * self._vectors(target, table)).sum(-1, keepdim=True)
        logits = torch.cat([positive, hidden @ self._vectors(negatives, table).T], dim=1)
        candidates = torch.cat([target[:, None], negatives.expand(len(target), -1)], dim=1)
        if self.repeat is not None:
            first = torch.cat([self._first_reads(inputs, targets)[window, in_window, None],
                               self._first_reads(inputs, negatives.expand(len(inputs), -1))[window]], dim=1)
            logits = logits - self.repeat.exp() * (first <= position)
        itself = candidates == target[:, None]
        itself[:, 0] = False  # a negative that is the target itself is left out
        return nn.functional.cross_entropy(logits.masked_fill(itself, -torch.inf), torch.zeros_like(target))


ARCHITECTURES = {"mlp": NCFModel, "gmf": GMF, "neumf": NeuMF, "sasrec": SASRec}


def build_model(architecture: str, num_users: int, num_items: int, **hyper) -> _Scorer:
    """A model by name; ``hyper`` may hold more arguments than that architecture takes."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose from {sorted(ARCHITECTURES)}")
    cls = ARCHITECTURES[architecture]
    accepted = inspect.signature(cls.__init__).parameters
    return cls(num_users, num_items, **{k: v for k, v in hyper.items() if k in accepted})
