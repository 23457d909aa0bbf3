"""The training config: one typed schema, every mistake refused in one line before any work starts."""

from pathlib import Path

import pytest

from cyclegan_hub.training import config as configs

ROOT = Path(__file__).resolve().parents[2]
MNIST = ROOT / "training" / "configs" / "mnist-6to9.toml"


def test_the_shipped_config_loads_typed_with_paths_relative_to_it():
    config = configs.load(MNIST)
    assert config.train.lambda_cycle == 1.5 and isinstance(config.train.lambda_cycle, float)
    assert config.model.d_layers == 2 and config.data.channels == 1 and config.domain_a.label == "6"
    assert Path(config.domain_a.path).resolve() == ROOT / "training" / "data" / "mnist-6-9"
    assert config.domain_a.spec().filter == "label == 6" and config.domain_b.spec("test").split == "test"


@pytest.mark.parametrize(
    "override,message",
    [
        ("train.lambda_cycle=ten", 'train.lambda_cycle = "ten": expected a number'),
        ("train.lambda_cycle=-1", "train.lambda_cycle = -1.0: use a value from 0.0 to 1000.0"),
        ("train.lambda_cycle=true", "train.lambda_cycle = true: expected a number"),
        ("train.max_steps=2.5", "train.max_steps = 2.5: expected a whole number"),
        ("train.lamda_cycle=5", "--set train.lamda_cycle: unknown key (did you mean 'lambda_cycle'?)"),
        ("trian.seed=1", "unknown section [trian] (did you mean 'train'?)"),
        ("data.channels=2", "data.channels = 2: use one of 1, 3"),
        ("train.gan_mode=wgan", 'train.gan_mode = "wgan": use one of "lsgan", "vanilla", "hinge"'),
        ("data.load_size=20", "data.load_size (20) must be at least data.image_size (28)"),
        ("model.d_layers=3", "gives a 1x1 patch map on 28x28 images; use fewer layers (model.d_layers = 2)"),
        ('domain_b.label="6"', "domain_a.label and domain_b.label are both '6'"),
        ("hub.push_to_hub=true", "--push-to-hub needs --hub-repo-id (hub.repo_id)"),
        ("train.seed", "--set 'train.seed': write SECTION.KEY=VALUE"),
    ],
)
def test_mistakes_are_one_line_naming_the_key_and_the_fix(override, message):
    with pytest.raises(configs.ConfigError) as info:
        configs.load(MNIST, [override])
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_config_file_with_a_misspelt_key_names_the_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(MNIST.read_text().replace("lambda_cycle = 1.5", "lambda_cycel = 1.5"))
    with pytest.raises(
        configs.ConfigError, match=r"c.toml: train.lambda_cycel: unknown key \(did you mean 'lambda_cycle'\?\)"
    ):
        configs.load(path)


def test_without_data_the_error_says_what_to_give():
    with pytest.raises(configs.ConfigError, match="domain_a.path is not set: give --config"):
        configs.load(None, [])


def test_flags_override_and_the_readme_carries_the_generated_reference():
    config = configs.load(MNIST, ["train.compile=true"], {"train.max_steps": 3, "train.seed": None})
    assert config.train.max_steps == 3 and config.train.seed == 0 and config.train.compile is True
    reference = configs.reference()
    assert "| `lambda_cycle` | `10.0` | 0.0 to 1000.0 |" in reference
    assert (
        reference in (ROOT / "README.md").read_text()
    )  # regenerate with: python -c "from cyclegan_hub.training import config; print(config.reference())"
