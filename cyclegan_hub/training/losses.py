"""CycleGAN's objective (Zhu et al., 2017, arXiv 1703.10593) as small pure functions, and the image pool.

Names follow the paper: G: X -> Y and F: Y -> X are the generators; D_Y judges G's outputs against real y,
D_X judges F's outputs against real x. The rest of the package names the domains A (= X) and B (= Y), so D_A is
the paper's D_X and D_B its D_Y; ``objective.cyclegan_step`` puts these terms together. The full objective (Eq. 3) is

    L(G, F, D_X, D_Y) = L_GAN(G, D_Y, X, Y) + L_GAN(F, D_X, Y, X) + lambda * L_cyc(G, F)

plus, optionally, lambda_id * L_identity (Section 5.2). The paper replaces the negative log likelihood of Eq. 1
by a least-squares loss (Section 4, "Training details"), which is our default ("lsgan").

| code                              | paper                                          |
|-----------------------------------|------------------------------------------------|
| discriminator_loss(D_Y(y), D_Y(G(x)))  | D_Y's half of Eq. 1, halved as in the paper |
| generator_adversarial_loss(D_Y(G(x)))  | G's half of Eq. 1                           |
| cycle_loss(F(G(x)), x)            | one direction of Eq. 2                         |
| identity_loss(G(y), y)            | one direction of L_identity (Section 5.2)      |
| ImagePool                         | "a history of generated images" (Section 4)    |
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

GAN_MODES = ("lsgan", "vanilla", "hinge")


def check_gan_mode(mode: str) -> None:
    """Raise a ValueError listing the valid GAN losses unless ``mode`` is one."""
    if mode not in GAN_MODES:
        raise ValueError(f"unknown GAN loss {mode!r}; valid: {', '.join(repr(m) for m in GAN_MODES)}")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, mode: str = "lsgan") -> torch.Tensor:
    """The discriminator's side of Eq. 1, e.g. for D_Y: real y should score 1, G(x) should score 0.

    - lsgan:   0.5 * (E[(D(y) - 1)^2] + E[D(G(x))^2])
    - vanilla: 0.5 * (BCE(D(y), 1) + BCE(D(G(x)), 0)), D giving logits
    - hinge:   0.5 * (E[relu(1 - D(y))] + E[relu(1 + D(G(x)))])

    The factor 0.5 is the paper's "we divide the objective by 2 while optimizing D", which slows D relative to G.
    """
    return 0.5 * (critic_loss(real_logits, True, mode) + critic_loss(fake_logits, False, mode))


def critic_loss(logits: torch.Tensor, real: bool, mode: str = "lsgan") -> torch.Tensor:
    """One side of ``discriminator_loss`` (unhalved): ``logits`` judged as real (``real=True``) or as fake."""
    check_gan_mode(mode)
    if mode == "lsgan":
        return F.mse_loss(logits, torch.ones_like(logits) if real else torch.zeros_like(logits))
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits) if real else torch.zeros_like(logits))
    return F.relu(1 - logits).mean() if real else F.relu(1 + logits).mean()


def generator_adversarial_loss(fake_logits: torch.Tensor, mode: str = "lsgan") -> torch.Tensor:
    """The generator's side of Eq. 1, e.g. for G against D_Y: make D_Y score G(x) as real.

    - lsgan:   E[(D(G(x)) - 1)^2]
    - vanilla: BCE(D(G(x)), 1) (the non-saturating form)
    - hinge:   -E[D(G(x))]
    """
    check_gan_mode(mode)
    if mode == "lsgan":
        return F.mse_loss(fake_logits, torch.ones_like(fake_logits))
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    return -fake_logits.mean()


def cycle_loss(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Eq. 2, one direction: ||F(G(x)) - x||_1 (forward cycle) or ||G(F(y)) - y||_1 (backward cycle), as a mean."""
    return F.l1_loss(reconstructed, original)


def identity_loss(same: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Section 5.2, one direction: ||G(y) - y||_1, G fed a real image of its *target* domain should change nothing.

    (Feeding G its own source domain, a common porting mistake, does not preserve colour composition.)"""
    return F.l1_loss(same, original)


class ImagePool:
    """A buffer of past generated images, so that D sees a history of fakes rather than only the latest
    (Shrivastava et al., 2017; CycleGAN Section 4, pool of 50).

    ``query(fakes)`` returns, image by image, either the new fake (while the pool fills, and with probability 1/2
    afterwards) or a stored older fake that the new one replaces. Randomness comes from the pool's own generator so
    that ``state_dict()`` / ``load_state_dict()`` resume it exactly.
    """

    def __init__(self, size: int = 50, seed: int = 0):
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return fakes
        out = []
        for image in fakes.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator) < 0.5:
                index = int(torch.randint(len(self.images), (), generator=self.generator))
                out.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def __len__(self) -> int:
        return len(self.images)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors only, so that the pool can be saved with safetensors."""
        state = {"rng": self.generator.get_state(), "size": torch.tensor(self.size)}
        if self.images:
            state["images"] = torch.stack(self.images).cpu()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor], device: torch.device | str = "cpu") -> None:
        self.size = int(state["size"])
        self.generator.set_state(state["rng"].cpu())
        self.images = [image.to(device) for image in state["images"]] if "images" in state else []
