"""cyclegan-hub: unpaired image-to-image translation (CycleGAN) as Hugging Face Hub models.

>>> from cyclegan_hub import CycleGenerator
>>> g = CycleGenerator.from_pretrained("user/mnist-6to9")  # doctest: +SKIP
>>> nine = g.translate("six.png")                           # doctest: +SKIP
"""

from .models.cyclegan import ARCHITECTURES, CycleGenerator
from .models.discriminator import PatchDiscriminator
from .training.losses import ImagePool, cycle_loss, discriminator_loss, generator_adversarial_loss, identity_loss

__version__ = "0.1.0"


def __getattr__(name: str):
    # ``cyclegan_hub.translate_dataset`` lives on a higher floor (``bulk``): loaded when first asked for, so that
    # ``import cyclegan_hub`` stays the networks, the translation path and the losses.
    if name == "translate_dataset":
        from .bulk.translate import translate_dataset

        return translate_dataset
    raise AttributeError(f"module 'cyclegan_hub' has no attribute {name!r}")


__all__ = [
    "ARCHITECTURES",
    "CycleGenerator",
    "ImagePool",
    "PatchDiscriminator",
    "cycle_loss",
    "discriminator_loss",
    "generator_adversarial_loss",
    "identity_loss",
    "translate_dataset",
]
