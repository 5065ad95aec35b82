"""The self-attentive sequence model: windows, causality, exact retrieval, training, serving."""

import math

import numpy as np
import pytest
import torch

from neo_ml.errors import ColdStartError, InvalidRequestError, NeoMLError
from neo_ml.ncf.config import FULL_SOFTMAX_ITEMS, SAMPLED_SOFTMAX, NCFConfig
from neo_ml.ncf.evaluate import evaluate_model
from neo_ml.ncf.model import SASRec
from neo_ml.ncf.sampling import SequenceWindows
from neo_ml.ncf.train import make_optimizer, train_ncf_model

PAD = 99


def test_windows_make_every_interaction_after_a_users_first_a_target_once():
    pairs = np.array([[0, 10], [0, 11], [0, 12], [0, 13], [0, 14], [1, 20], [1, 21], [2, 30]])
    windows = SequenceWindows.from_pairs(pairs, length=3, pad=PAD)
    assert windows.users.tolist() == [0, 0, 1]  # user 2 has one item: nothing to predict
    assert windows.inputs.tolist() == [[11, 12, 13], [PAD, PAD, 10], [PAD, PAD, 20]]
    assert windows.targets.tolist() == [[12, 13, 14], [PAD, PAD, 11], [PAD, PAD, 21]]
    targets = windows.targets[windows.targets != PAD]
    assert sorted(targets.tolist()) == [11, 12, 13, 14, 21]



def test_windows_of_no_pairs_are_empty_and_batches_read_them_as_64_bit_indices():
    from neo_ml.ncf.sampling import sequence_batches

    assert len(SequenceWindows.from_pairs(np.zeros((0, 2), np.int64), length=3, pad=PAD)) == 0
    windows = SequenceWindows.from_pairs(np.array([[0, 10], [0, 11], [1, 20], [1, 21]]), length=3, pad=PAD)
    assert windows.inputs.dtype == np.int32  # half the memory of a large epoch's windows
    (users, inputs, targets, _), = sequence_batches(windows, per_batch=8, seed=0, epoch=0, num_items=PAD)
    assert inputs.dtype == targets.dtype == np.int64 and sorted(targets[targets != PAD].tolist()) == [11, 21]

def test_overlapping_windows_give_every_target_earlier_items_to_read():
    pairs = np.array([[0, 10], [0, 11], [0, 12], [0, 13], [0, 14]])
    windows = SequenceWindows.from_pairs(pairs, length=3, pad=PAD, stride=2)
    assert windows.inputs.tolist() == [[11, 12, 13], [PAD, 10, 11]]
    assert windows.targets.tolist() == [[PAD, 13, 14], [PAD, 11, 12]]  # 13 reads 11 and 12 before it
    assert sorted(windows.targets[windows.targets != PAD].tolist()) == [11, 12, 13, 14]


def _model(**options):
    torch.manual_seed(0)
    return SASRec(5, 30, embedding_dim=8, history_length=6, dropout=0.0, **options).eval()


def test_a_position_sees_only_itself_and_earlier_items():
    model = _model()
    sequence = torch.tensor([[30, 30, 3, 4, 5, 6]])  # two pads (index num_items), then items
    changed = sequence.clone()
    changed[0, 4:] = torch.tensor([7, 8])
    before, after = model.encode(sequence), model.encode(changed)
    assert torch.allclose(before[0, :4], after[0, :4], atol=1e-6)
    assert not torch.allclose(before[0, 4:], after[0, 4:])
    assert torch.isfinite(before).all()  # pads attend to themselves only: no empty softmax


def test_pads_are_never_attended():
    model = _model()
    padded = model.encode(torch.tensor([[30, 30, 30, 30, 5, 6]]))[0, -1]
    alone = model.encode(torch.tensor([[5, 6]]))[0, -1]  # the same two items at the same positions
    assert torch.allclose(padded, alone, atol=1e-6)


def test_scores_are_inner_products_less_the_learned_penalty_on_items_read():
    model = _model()
    with torch.no_grad():
        model.repeat.fill_(math.log(3.0))
    users, history = torch.tensor([0, 3]), torch.tensor([[1, 2, 2, 30, 30, 30], [9, 8, 7, 6, 5, 4]])
    every = model.score_all_items(users, history)
    vectors = model.user_vectors(users, history)
    inner = model.retrieval_queries(vectors) @ model.retrieval_items().T
    read = torch.zeros_like(inner)
    read[0, [1, 2]] = read[1, [4, 5, 6, 7, 8, 9]] = 1.0  # a repeated item once, pads never
    assert torch.allclose(every, inner - 3.0 * read, atol=1e-5)
    for row, item in ((1, 17), (1, 8), (0, 2)):
        one = model.score(tuple(v[[row]] for v in vectors), torch.tensor([item]))
        assert torch.allclose(one, every[row, item], atol=1e-5)
    plain = _model(repeat_penalty=False)
    assert torch.allclose(plain.score_all_items(users, history),
                          plain.retrieval_queries(plain.user_vectors(users, history)) @ plain.retrieval_items().T,
                          atol=1e-5)


@pytest.mark.parametrize("softmax_negatives", [None, torch.tensor([7, 8, 2, 6])])
def test_training_lowers_each_position_on_the_items_read_up_to_it(softmax_negatives):
    model = _model()
    with torch.no_grad():
        model.repeat.fill_(math.log(2.0))
    inputs, targets = torch.tensor([[30, 1, 2, 3, 2, 5]]), torch.tensor([[30, 2, 3, 1, 5, 6]])
    loss = model.sequence_loss(inputs, targets, softmax_negatives)
    hidden = model.encode(inputs)[0]
    items = model.item_embedding.weight[:30]
    expected = []
    for position in range(1, 6):
        read = set(inputs[0, 1:position + 1].tolist())
        target = int(targets[0, position])
        candidates = list(range(30)) if softmax_negatives is None else \
            [target] + [n for n in softmax_negatives.tolist() if n != target]
        logits = torch.stack([hidden[position] @ items[i] - (2.0 if i in read else 0.0) for i in candidates])
        expected.append(-torch.log_softmax(logits, 0)[candidates.index(target)])
    assert torch.allclose(loss, torch.stack(expected).mean(), atol=1e-5)
    loss.backward()
    assert model.repeat.grad is not None and model.repeat.grad != 0


def test_the_long_term_taste_reads_past_the_attention_window():
    model = _model(taste_length=9)  # attention over the latest 6 items, taste over the latest 9
    torch.nn.init.normal_(model.taste.weight[:30])
    assert (model.history_length, model.attention_length) == (9, 6)
    sequence = torch.tensor([[30, 1, 2, 3, 4, 5, 6, 7, 8]])
    older = sequence.clone()
    older[0, 1] = 9  # outside the attention window
    assert not torch.allclose(model.encode(sequence), model.encode(older))
    plain = _model()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("taste")})
    taste = model.encode(sequence)[0] - plain.encode(sequence)[0]  # (6 positions of the window, dim)
    for column, position in enumerate(range(3, 9)):
        items = sequence[0, 1:position + 1]
        assert torch.allclose(taste[column], model.taste.weight[items].sum(0) / math.sqrt(len(items)), atol=1e-5)
    assert torch.allclose(plain.encode(sequence), plain.encode(older))  # no taste: the window alone


def test_taste_dropout_leaves_a_share_of_the_items_out_of_training_tastes_only():
    model = _model(taste_length=9, taste_dropout=0.5)
    torch.nn.init.normal_(model.taste.weight[:30])
    sequences = torch.tensor([[30, 1, 2, 3, 4, 5, 6, 7, 8]])
    served = model.encode(sequences)  # eval: every item counts
    model.train()
    torch.manual_seed(3)
    kept = torch.rand(sequences.shape) >= 0.5
    torch.manual_seed(3)
    trained = model.encode(sequences)
    items = sequences[0, 1:].masked_fill(~kept[0, 1:], 30)  # the last position's taste, the dropped left out
    expected = model.taste.weight[items].sum(0) / math.sqrt(max(1, int((items != 30).sum())))
    model.eval()
    plain = served[0, -1] - model.taste.weight[sequences[0, 1:]].sum(0) / math.sqrt(8)  # attention alone
    assert 0 < kept[0, 1:].sum() < 8
    assert torch.allclose(trained[0, -1], plain + expected, atol=1e-5)
    with pytest.raises(InvalidRequestError, match="taste_dropout must be"):
        NCFConfig(taste_dropout=1.0)


@pytest.mark.parametrize("softmax_negatives", [None, torch.tensor([7, 1, 2, 6])])
def test_windows_longer_than_the_attention_predict_in_it_and_penalise_every_item_read(softmax_negatives):
    model = _model(taste_length=8)
    torch.nn.init.normal_(model.taste.weight[:30])
    with torch.no_grad():
        model.repeat.fill_(math.log(2.0))
    inputs, targets = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]]), torch.tensor([[30, 30, 4, 5, 6, 7, 8, 9]])
    loss = model.sequence_loss(inputs, targets, softmax_negatives)
    hidden = model.encode(inputs)[0]  # the last 6 positions
    items = model.item_embedding.weight[:30]
    expected = []
    for column, position in enumerate(range(2, 8)):
        read, target = set(inputs[0, :position + 1].tolist()), int(targets[0, position])
        candidates = list(range(30)) if softmax_negatives is None else \
            [target] + [n for n in softmax_negatives.tolist() if n != target]
        logits = torch.stack([hidden[column] @ items[i] - (2.0 if i in read else 0.0) for i in candidates])
        expected.append(-torch.log_softmax(logits, 0)[candidates.index(target)])
    assert torch.allclose(loss, torch.stack(expected).mean(), atol=1e-5)


@pytest.mark.parametrize("heads, taste_length, history_length, text_dim",
                         [(1, 12, 6, 0), (2, 0, 6, 0), (4, 6, 6, 0), (1, 12, 6, 8)])
def test_the_serving_encoder_matches_the_last_position_of_encode(heads, taste_length, history_length, text_dim):
    torch.manual_seed(1)
    model = SASRec(5, 30, embedding_dim=16, history_length=history_length, num_heads=heads,
                   taste_length=taste_length, dropout=0.3, text_dim=text_dim).eval()
    if text_dim:  # a third of the items have no id vector
        model.set_item_text(torch.randn(30, text_dim), torch.arange(30) % 3 > 0)
    with torch.no_grad():
        for parameter in model.parameters():  # away from the near-zero start, where errors hide
            parameter.add_(0.3 * torch.randn_like(parameter))
        model.item_embedding.weight[30].zero_()
        if model.taste is not None:
            model.taste.weight[30].zero_()
    length = model.history_length
    sequences = torch.randint(0, 30, (5, length))
    for row, real in enumerate([0, 1, 3, length, history_length - 1]):  # pads on the left of each row
        sequences[row, :length - real] = 30
    with torch.no_grad():
        each = torch.cat([model.encode_last(sequences[row:row + 1]) for row in range(len(sequences))])
        batch = model.encode_last(sequences)
        expected = model.encode(sequences)[:, -1]
    assert torch.allclose(batch, expected, atol=1e-5) and torch.allclose(each, expected, atol=1e-5)


def test_a_user_unknown_to_the_id_table_is_read_from_history_alone():
    model = _model(user_embedding=True)
    torch.nn.init.normal_(model.user.weight[:5])
    history = torch.tensor([[1, 2, 3, 30, 30, 30]])
    from_history = model.encode(history.flip(1))[:, -1]
    newcomer = model.user_vectors(torch.tensor([5]), history)[0]  # index num_users: no id row
    known = model.user_vectors(torch.tensor([2]), history)[0]
    assert torch.allclose(newcomer, from_history, atol=1e-6)
    assert torch.allclose(known, from_history + model.user.weight[2], atol=1e-6)


def test_user_dropout_reads_a_share_of_training_windows_as_a_newcomers():
    model = _model(user_embedding=True, user_dropout=0.5).train()  # dropout 0: the only draw is the user drop
    torch.nn.init.normal_(model.user.weight[:5])
    users = torch.arange(5).repeat(8)
    inputs, targets = torch.randint(0, 30, (40, 6)), torch.randint(0, 30, (40, 6))
    torch.manual_seed(1)
    dropped = torch.rand(40) < 0.5
    torch.manual_seed(1)
    loss = model.sequence_loss(inputs, targets, users=users)
    model.user_dropout = 0.0
    assert 0 < dropped.sum() < 40
    assert torch.allclose(loss, model.sequence_loss(inputs, targets, users=users.masked_fill(dropped, 5)))
    assert not torch.allclose(loss, model.sequence_loss(inputs, targets, users=users))
    with pytest.raises(InvalidRequestError, match="user_dropout must be"):
        NCFConfig(user_dropout=1.0)


def test_sampled_softmax_is_the_cross_entropy_over_target_and_negatives():
    model = _model(repeat_penalty=False)
    inputs, targets = torch.tensor([[30, 1, 2, 3, 4, 5]]), torch.tensor([[30, 2, 3, 4, 5, 6]])
    negatives = torch.tensor([7, 8, 6])  # 6 is the last target: left out for that position
    loss = model.sequence_loss(inputs, targets, negatives)
    hidden = model.encode(inputs)[0, 1:]
    items = model.item_embedding.weight
    expected = []
    for row, target in zip(hidden, targets[0, 1:], strict=True):
        others = [n for n in negatives.tolist() if n != int(target)]
        logits = torch.stack([row @ items[target]] + [row @ items[n] for n in others])
        expected.append(-torch.log_softmax(logits, 0)[0])
    assert torch.allclose(loss, torch.stack(expected).mean(), atol=1e-5)


def test_config_defaults_follow_the_architecture():
    sequence, pointwise = NCFConfig(architecture="sasrec"), NCFConfig(architecture="neumf")
    assert (sequence.history_length, sequence.batch_size, sequence.dropout) == (50, 128, 0.2)
    assert (pointwise.history_length, pointwise.batch_size, pointwise.dropout) == (5, 1024, 0.0)
    assert (sequence.taste_length, sequence.items_read, pointwise.taste_length, pointwise.items_read) == \
        (200, 200, 0, 5)
    assert NCFConfig(architecture="sasrec", taste_length=0).items_read == 50
    assert NCFConfig(architecture="sasrec", history_length=20).history_length == 20
    assert sequence.negatives_for(FULL_SOFTMAX_ITEMS) is None
    assert sequence.negatives_for(FULL_SOFTMAX_ITEMS + 1) == SAMPLED_SOFTMAX
    sparse = NCFConfig(architecture="sasrec", sparse=True)  # a full softmax would move every row anyway
    assert sparse.negatives_for(10_000) == SAMPLED_SOFTMAX and sparse.negatives_for(SAMPLED_SOFTMAX) is None
    assert NCFConfig(architecture="sasrec", sparse=True, softmax_negatives=50).negatives_for(10_000) == 50
    with pytest.raises(NeoMLError, match="sparse embeddings need a sampled softmax, but all 300 items"):
        make_optimizer(SASRec(5, 300), sparse)
    with pytest.raises(InvalidRequestError, match=r"num_heads \(3\) must divide embedding_dim \(64\)"):
        NCFConfig(architecture="sasrec", num_heads=3)
    with pytest.raises(InvalidRequestError, match="history_length must be at least 1 for sasrec"):
        NCFConfig(architecture="sasrec", history_length=0)
    with pytest.raises(InvalidRequestError, match=r"window_stride \(60\) must be at most history_length \(50\)"):
        NCFConfig(architecture="sasrec", window_stride=60)
    with pytest.raises(InvalidRequestError, match="taste_length"):
        NCFConfig(architecture="sasrec", taste_length=-1)


@pytest.mark.parametrize("softmax_negatives", [None, 20])
def test_training_on_sequences_beats_popularity(synthetic_split, softmax_negatives):
    from neo_ml.ncf.baselines import PopularityModel

    config = NCFConfig(architecture="sasrec", embedding_dim=32, history_length=10, epochs=10, patience=10,
                       batch_size=64, learning_rate=5e-3, softmax_negatives=softmax_negatives, seed=0)
    result = train_ncf_model(synthetic_split, config, progress=False)
    assert all(np.isfinite(h["train_loss"]) and np.isfinite(h["val_loss"]) for h in result.history)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    popularity = evaluate_model(PopularityModel(synthetic_split.train, synthetic_split.num_items),
                                synthetic_split, "validation")
    assert result.validation_metrics["val_hr@10"] > popularity["hr@10"]


def test_a_sasrec_checkpoint_serves_known_users_through_the_service(tmp_path, synthetic_split):
    from neo_ml.ncf.checkpoint import load_ncf_checkpoint, model_from_checkpoint, save_trained
    from neo_ml.ncf.service import NCFService

    config = NCFConfig(architecture="sasrec", embedding_dim=16, history_length=10, epochs=1, batch_size=64)
    result = train_ncf_model(synthetic_split, config, progress=False)
    path = save_trained(tmp_path / "sasrec.pt", result, synthetic_split, {}, "x", "synthetic")
    assert load_ncf_checkpoint(path)["architecture"] == "sasrec"
    reloaded = model_from_checkpoint(load_ncf_checkpoint(path))
    for name, tensor in result.model.state_dict().items():
        assert torch.equal(tensor, reloaded.state_dict()[name]), name
    service = NCFService(model_path=path)
    user = synthetic_split.users.ids[0]
    ranked = service.recommend(user, top_k=5)
    seen = {synthetic_split.items.ids[i] for u, i in synthetic_split.all_pairs() if u == 0}
    assert len(ranked) == 5 and not {item for item, _ in ranked} & seen
    scores = service.predict_batch(user, [item for item, _ in ranked])
    assert [round(scores[item], 6) for item, _ in ranked] == [round(score, 6) for _, score in ranked]


def test_a_sasrec_checkpoint_saved_before_the_repeat_penalty_still_loads(tmp_path, synthetic_split):
    from neo_ml.ncf.checkpoint import load_ncf_checkpoint, model_from_checkpoint, save_ncf_checkpoint

    config = NCFConfig(architecture="sasrec", embedding_dim=8, history_length=6, repeat_penalty=False).to_dict()
    del config["repeat_penalty"], config["window_stride"], config["taste_length"]  # fields that version lacked
    model = SASRec(synthetic_split.num_users, synthetic_split.num_items, 8, 6, repeat_penalty=False)
    path = save_ncf_checkpoint(tmp_path / "old.pt", model, config, synthetic_split.users, synthetic_split.items,
                               synthetic_split.train, {}, [], "x", "test")
    reloaded = model_from_checkpoint(load_ncf_checkpoint(path))
    assert not reloaded.lowers_read_items and reloaded.taste is None and reloaded.history_length == 6


@pytest.fixture(scope="module")
def sasrec_checkpoint(tmp_path_factory, synthetic_split):
    from neo_ml.ncf.checkpoint import save_trained

    config = NCFConfig(architecture="sasrec", embedding_dim=32, history_length=10, epochs=4, batch_size=64,
                       learning_rate=5e-3, seed=0)
    result = train_ncf_model(synthetic_split, config, progress=False)
    return save_trained(tmp_path_factory.mktemp("sasrec") / "m.pt", result, synthetic_split, {}, "x", "synthetic")


def _interactions(user, items, start=2_000_000_000):
    import pandas as pd

    return pd.DataFrame([{"user_id": user, "item_id": item, "timestamp": start + 60 * k,
                          "interaction_type": "view", "implicit_rating": 1.0} for k, item in enumerate(items)])


def test_a_newcomer_in_the_database_is_served_from_their_items_and_each_new_one_counts(tmp_path,
                                                                                       sasrec_checkpoint,
                                                                                       synthetic_split):
    from neo_ml.data import db as database
    from neo_ml.ncf.service import NCFService

    engine = database.connect(tmp_path / "neo.db")
    items = list(synthetic_split.items.ids[:40])
    database.import_interactions(engine, _interactions("newcomer", items[:5]))
    service = NCFService(db=engine, model_path=sasrec_checkpoint)
    assert "newcomer" not in service.known_user_ids()
    popular = NCFService(db=engine, model_path=sasrec_checkpoint).recommend("nobody", top_k=10)
    first = service.recommend("newcomer", top_k=10)
    assert len(first) == 10 and not {i for i, _ in first} & set(items[:5])
    assert [i for i, _ in first] != [i for i, _ in popular]  # read from the items, not the popular list
    scores = service.predict_batch("newcomer", [i for i, _ in first])
    assert [s for _, s in first] == pytest.approx([scores[i] for i, _ in first])
    assert service.predict("newcomer", [first[0][0]])[first[0][0]] == pytest.approx(first[0][1])
    database.import_interactions(engine, _interactions("newcomer", items[20:23], start=2_100_000_000))
    second = service.recommend("newcomer", top_k=10)
    assert second != first and not {i for i, _ in second} & set(items[:5] + items[20:23])
    with pytest.raises(ColdStartError, match="unknown user 'nobody'"):
        service.predict("nobody", [first[0][0]])


def test_without_a_database_a_history_argument_serves_anyone(tmp_path, sasrec_checkpoint, synthetic_split):
    from neo_ml.data import db as database
    from neo_ml.ncf.service import NCFService

    items = list(synthetic_split.items.ids[:6])
    engine = database.connect(tmp_path / "neo.db")
    database.import_interactions(engine, _interactions("reader", items))
    from_database = NCFService(db=engine, model_path=sasrec_checkpoint).recommend("reader", top_k=5)
    service = NCFService(model_path=sasrec_checkpoint)
    assert service.recommend("reader", top_k=5, history=items) == from_database
    batch = service.recommend_batch(["reader", "nobody"], top_k=5, history=[items, []])
    # A batch runs on every thread, a lone call on one: the same ranking, scores equal to float rounding.
    assert [i for i, _ in batch[0]] == [i for i, _ in from_database]
    assert [s for _, s in batch[0]] == pytest.approx([s for _, s in from_database], abs=1e-6)
    assert batch[1] == service.recommend("nobody", top_k=5)
    scores = service.predict_batch("reader", [i for i, _ in from_database], history=items)
    assert [s for _, s in from_database] == pytest.approx([scores[i] for i, _ in from_database])
    with pytest.raises(InvalidRequestError, match="history has 1 lists for 2 users"):
        service.recommend_batch(["reader", "nobody"], history=[items])
    with pytest.raises(InvalidRequestError, match="history must be a list of ids"):
        service.recommend("reader", history="item_1")


def test_an_id_model_still_serves_an_unknown_user_popular_items(trained_checkpoint, synthetic_split):
    from neo_ml.ncf.service import NCFService

    service = NCFService(model_path=trained_checkpoint)
    items = list(synthetic_split.items.ids[:6])
    popular = [item for item, _ in service.recommend("stranger", top_k=20)]
    ranked = [item for item, _ in service.recommend("stranger", top_k=5, history=items)]
    assert ranked == [item for item in popular if item not in items][:5]  # popular, without their items
    with pytest.raises(ColdStartError, match="unknown user 'stranger'"):
        service.predict_batch("stranger", items, history=items)
