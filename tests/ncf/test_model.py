import pytest
import torch

from neo_ml.ncf.model import GMF, NCFModel, NeuMF, build_model


@pytest.mark.parametrize("cls", [NCFModel, GMF, NeuMF])
@pytest.mark.parametrize("history_length", [0, 3])
def test_shapes_and_output_range(cls, history_length):
    model = cls(10, 20, embedding_dim=8, history_length=history_length)
    users, items = torch.tensor([0, 3, 9]), torch.tensor([1, 19, 0])
    history = torch.tensor([[1, 2, 20], [20, 20, 20], [5, 6, 7]]) if history_length else None
    logits = model(users, items, history)
    assert logits.shape == (3,)
    probs = model.predict(users, items, history)
    assert torch.all((probs > 0) & (probs < 1))
    assert torch.allclose(probs, torch.sigmoid(logits))


def test_seed_architecture_is_concat_relu_mlp():
    model = NCFModel(5, 7)
    assert model.user_tower.user.embedding_dim == 64 and model.item_embedding.embedding_dim == 64
    widths = [layer.out_features for layer in model.mlp if isinstance(layer, torch.nn.Linear)]
    assert widths == [128, 64, 32]
    assert model.mlp[0].in_features == 128  # the two embeddings concatenated
    assert sum(isinstance(layer, torch.nn.ReLU) for layer in model.mlp) == 3
    assert model.output.out_features == 1


@pytest.mark.parametrize("architecture", ["mlp", "gmf", "neumf"])
def test_score_all_items_matches_forward(architecture):
    torch.manual_seed(0)
    model = build_model(architecture, 6, 11, embedding_dim=8, hidden_layers=[8, 4], history_length=2)
    for p in model.parameters():  # move away from the near-zero init so differences show
        torch.nn.init.normal_(p, std=0.5)
    users, history = torch.tensor([1, 4]), torch.tensor([[3, 11], [0, 2]])
    expected = torch.stack([model(users[i].repeat(11), torch.arange(11), history[i].repeat(11, 1))
                            for i in range(2)])
    assert torch.allclose(model.score_all_items(users, history), expected, atol=1e-6)


def test_history_is_the_mean_of_real_items_only():
    torch.manual_seed(0)
    model = NeuMF(4, 9, embedding_dim=8, history_length=3)
    tower, users = model.gmf_user, torch.tensor([1])
    rows = tower.history.weight
    one = tower(users, torch.tensor([[4, 9, 9]]))  # 9 = num_items = padding
    assert torch.allclose(one, tower.user(users) + rows[4])
    two = tower(users, torch.tensor([[4, 5, 9]]))
    assert torch.allclose(two, tower.user(users) + (rows[4] + rows[5]) / 2)
    model(users, torch.tensor([2]), torch.tensor([[4, 9, 9]])).sum().backward()
    assert rows.grad[9].abs().sum() == 0  # the padding row never learns


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("transformer", 2, 2)


@pytest.mark.parametrize("architecture", ["mlp", "neumf"])
def test_all_item_scores_follow_new_weights(architecture):
    """The cached item projection of the fast path is rebuilt when the weights change."""
    torch.manual_seed(0)
    model = build_model(architecture, 3, 7, embedding_dim=4, hidden_layers=[8, 4], history_length=2).eval()
    users, history = torch.tensor([0, 2]), torch.tensor([[1, 7], [3, 4]])

    def slow():
        return torch.stack([model(users[i].repeat(7), torch.arange(7), history[i].repeat(7, 1)) for i in range(2)])

    before = model.score_all_items(users, history)
    assert torch.allclose(before, slow(), atol=1e-6)
    new_state = {k: torch.randn_like(v) for k, v in model.state_dict().items()}
    model.load_state_dict(new_state)
    after = model.score_all_items(users, history)
    assert torch.allclose(after, slow(), atol=1e-5) and not torch.allclose(after, before)
